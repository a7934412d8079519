"""The experiment as a graph of named steps with declared inputs and outputs, run in dependency order."""
