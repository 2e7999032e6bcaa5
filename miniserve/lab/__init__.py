"""The lab: the measuring instrument. The HTTP load generator, the sweep's results, the acceptance criteria as
pure functions, and the report (CSVs, plots, manifest) that an experiment folder is made of.

May import the tutor (for payload sentences); never imported by `miniserve.server` or `miniserve.tutor`.
"""
