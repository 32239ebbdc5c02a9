"""The command line: check, parameter values, errors."""


import pytest

from w2s_helpers.course.cli import main, parse_value


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("True", True), ("None", None),
                                         ("top_blocks", "top_blocks"), ("1e-3", 1e-3)])
def test_parameter_values_are_typed(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_cli_refuses_profile_as_a_parameter(capsys):
    from w2s_helpers.course.cli import main

    with pytest.raises(SystemExit):
        main(["run", "-p", "PROFILE", "ci"])
    assert "--profile" in capsys.readouterr().err


def test_cli_check_and_errors(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "MISMATCH" not in out
    with pytest.raises(SystemExit):
        main(["no-such-command"])
