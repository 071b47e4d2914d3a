"""The autopilot's merge queue: how finished work lands on its target.

One folder for the landing pass (lander.py), the strategies it picks from (onto a branch,
onto each task's own branch, through a forge's pull requests), the steps they share, the
gate's run of a landing check and the target they land on: the queue's code in one room,
found under the name a reader looks for."""
