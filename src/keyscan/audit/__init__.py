"""`keyscan audit`: many repositories, remembered in an inventory.

`task.py` is one repository's work (runs anywhere), `executors.py` where it runs,
`client.py` the loop that hands out tasks and writes each result to the inventory.
"""
