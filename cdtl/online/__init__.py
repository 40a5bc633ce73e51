"""Online experiments, apart from the service that runs them: the statistics of A/B tests and interleaving.

- ``cdtl.online.abtest``: hash assignment, the two-proportion test, bootstrap intervals, sample-ratio
  checks, power and users needed, A/A simulations with and without peeking, mSPRT;
- ``cdtl.online.cuped``: CUPED, the A/B difference adjusted by a pre-experiment covariate;
- ``cdtl.online.interleaving``: team-draft interleaving, its preference test and its power.

Nothing here imports the service or the models, so a chapter, a notebook of logged outcomes or the
service itself can use it alike.
"""
