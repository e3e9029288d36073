Optimal - objective value -3.00000000
      0 x1   0.5   0
