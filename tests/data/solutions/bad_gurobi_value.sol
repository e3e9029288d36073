# Solution for model obj
x1 1
x2 0
x3 2
x4 1
x5 0
