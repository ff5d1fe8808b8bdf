from keyscan.launch import main

main()
