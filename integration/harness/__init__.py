"""The harness of the cross-language suite: processes, the scenario context and the report.

- :mod:`harness.common`: paths, languages, the cluster ID and :class:`~harness.common.StepError`;
- :mod:`harness.broker`: the ``stan-broker`` process (readiness from its ready line);
- :mod:`harness.runner`: the language runner processes and their JSON-lines protocol;
- :mod:`harness.context`: :class:`~harness.context.Ctx`, the helpers scenarios are written with;
- :mod:`harness.report`: results, the matrix and the closing ``N passed, M failed`` line.

Python 3.11+ standard library only.
"""
