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
x5 0
qp1 1
qpone 1
# Rows 1
pair1 -1

# Dual solution values
None

# Basis
HiGHS_basis_file v2
None
