from keyscan.cli import main

main()
