"""Colours: each cell's colour, shared by every figure and terminal table so the two match.

Kept apart from `study.reporting.figures` so the `study` command can colour a table without
importing matplotlib or seaborn.
"""

# seaborn's colour-blind palette, first three.
CELL_COLOURS = {"SimpleRNN": "#0173b2", "GRU": "#de8f05", "LSTM": "#029e73"}
