# Solution for model obj
x1 1
x2 0
x3 1
x4 1
