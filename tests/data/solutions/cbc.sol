Optimal - objective value -3.00000000
      0 x1                       1                       0
      2 x3                       1                       0
      3 x4                       1                      -1
      5 qp1                      1                       2
