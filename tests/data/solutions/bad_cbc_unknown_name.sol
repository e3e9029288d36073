Optimal - objective value -3.00000000
      0 x1   1   0
      1 y7   1   0
