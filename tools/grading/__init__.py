"""The two-phase grader behind tools/grade.py.

child.py    phase 1: runs a submission's code cells, exports the graded answers as plain
            data, calls the submission's functions on the grader's inputs
sandbox.py  phase 1's process: scratch folder, limits, namespaces, the request channel
phase2.py   phase 2: the grading seed, otter's test files run on the decoded answers
"""
