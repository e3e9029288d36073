# Solution for model obj
# Objective value = -3
x1 1
x2 0
x3 1
x4 1
x5 -0
qp1 1
