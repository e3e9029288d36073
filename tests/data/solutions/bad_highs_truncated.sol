Model status
Optimal

# Primal solution values
Feasible
Objective -3
# Columns 7
x1 1
x2 0
x3 1
x4 1
