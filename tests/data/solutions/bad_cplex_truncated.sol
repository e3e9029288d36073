<?xml version = "1.0" encoding="UTF-8" standalone="yes"?>
<CPLEXSolution version="1.2">
 <header
   problemName="t.lp"
   objectiveValue="-3"
   solutionTypeValue="3"
   solutionTypeString="primal"
   solutionStatusValue="101"
   solutionStatusString="integer optimal solution"
   solutionMethodString="mip"/>
 <quality epInt="1.0000000000000001e-05"/>
 <linearConstraints>
  <constraint name="pair1" index="0" slack="0"/>
 </linearConstraints>
 <variables>
  <variable name="x1" index="0" value="1"/>
  <variable name="x2" index="1" value="0"/>
