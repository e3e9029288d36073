Optimal - objective value -3.00000000
      0 x1   1   0
      2 x1   1   0
