c Problem:    
c Rows:       2
c Columns:    7
c Non-zeros:  6
c Status:     INTEGER OPTIMAL
c Objective:  obj = -3 (MINimum)
c
s mip 2 7 o -3
i 1 -1
i 2 0
j 1 1
j 2 0
