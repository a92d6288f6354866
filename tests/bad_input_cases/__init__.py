"""Area tables of bad-input rows, each a ``CASES`` dict like tests/test_bad_inputs.py's: name -> (setup(tmp) -> CLI
args, exit code, needles the one error line holds). tests/test_bad_inputs.py runs them all."""

from __future__ import annotations

from bad_input_cases import config_values, data_and_api, files, path_arguments, predict_and_tools

AREA_CASES = {**files.CASES, **config_values.CASES, **data_and_api.CASES, **predict_and_tools.CASES, **path_arguments.CASES}
