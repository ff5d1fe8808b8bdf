from keyscan.launch import run

run()
