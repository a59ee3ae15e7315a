"""`ComparisonSettings`: frozen, checked when made, built by the command line without
TensorFlow, and the one input of `kal.compare`; the comparison package has no import loop."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys

import pytest

import keras_adaptive_loss as kal
from keras_adaptive_loss import cli
from keras_adaptive_loss.comparison.settings import ComparisonSettings, SettingError

QUICK = {"seeds": 1, "epochs": 1, "plots": False, "verbose": 0}


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"dataset": 3}, "dataset", "dataset must be a name, a file or a kal.datasets.Dataset"),
        ({"losses": []}, "losses", "losses is empty"),
        ({"losses": ["focal", "focal"]}, "losses", "losses names a loss twice"),
        ({"losses": "focal,nope"}, "losses", "Unknown loss 'nope' in losses"),
        ({"losses": {"mine": 3}}, "losses", "Loss 'mine' must be a preset name or a factory"),
        ({"losses": 3}, "losses", "losses must be preset names or a mapping"),
        ({"seeds": 0}, "seeds", "seeds must be an integer >= 1; got 0."),
        ({"seeds": [1, 1]}, "seeds", "seeds names a seed twice"),
        ({"seeds": ["a"]}, "seeds", "seeds must be a count >= 1 or a non-empty list of ints"),
        ({"epochs": 2.5}, "epochs", "epochs must be an integer >= 1; got 2.5."),
        ({"batch_size": True}, "batch_size", "batch_size must be an integer >= 1"),
        ({"train_size": 0}, "train_size", "train_size must be an integer >= 1"),
        ({"learning_rate": 0.0}, "learning_rate", "learning_rate must be > 0"),
        ({"model": "vgg"}, "model", "Unknown model 'vgg'; model is one of mlp"),
        ({"strategy": "tpu"}, "strategy", "strategy must be None, 'mirrored' or a"),
        ({"strategy": "mirrored", "jit_compile": True}, "jit_compile", "cannot be combined"),
        ({"validation_fraction": 1.0}, "validation_fraction", "must lie in (0, 1)"),
        ({"losses": ["focal"], "reference": "gce"}, "reference", "reference 'gce' is not among"),
        ({"optimizer": "rmsprop"}, "optimizer", "optimizer must be one of adam, sgd"),
        ({"label_noise": 1.0}, "label_noise", "label_noise must lie in [0, 1); got 1.0."),
        ({"noise_type": "asym"}, "noise_type", "noise_type must be one of symmetric, pair"),
        ({"imbalance": 0.5}, "imbalance", "imbalance must be a head:tail ratio >= 1"),
        ({"evaluation": "first"}, "evaluation", "evaluation must be one of last, best"),
        ({"resume": True}, "resume", "resume needs the output folder"),
    ],
)
def test_a_setting_that_cannot_run_is_refused_with_its_name(settings, field, message):
    with pytest.raises(SettingError) as error:
        ComparisonSettings(**settings)
    assert error.value.field == field
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


def test_a_tensorboard_path_that_is_a_file_is_refused_without_creating_anything(tmp_path):
    path = tmp_path / "logs"
    path.write_text("")
    with pytest.raises(SettingError, match="is a file, not a directory"):
        ComparisonSettings(tensorboard=str(path))
    ComparisonSettings(tensorboard=str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()  # made by compare, not by the settings


def test_settings_are_frozen_and_normalised():
    settings = ComparisonSettings(losses="gce, crossentropy", seeds=2, strategy="none")
    assert dict(settings.losses) == {"gce": "gce", "crossentropy": "crossentropy"}
    assert settings.seeds == (0, 1) and settings.strategy is None
    assert settings.reference is None and settings.reference_loss == "crossentropy"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 3
    with pytest.raises(TypeError):
        settings.losses["focal"] = "focal"  # a read-only mapping
    assert ComparisonSettings(losses=["gce", "focal"]).reference_loss == "gce"  # no CE: the first


def test_the_message_spells_settings_as_the_caller_names_them():
    with pytest.raises(SettingError) as error:
        ComparisonSettings(losses=["focal"], reference="crossentropy")
    message = error.value.message(cli.option)
    assert message.startswith("--reference 'crossentropy' is not among the compared losses")
    assert "add it to the --losses" in message


def test_the_command_line_has_an_option_for_every_setting_but_the_python_only_ones():
    parser = cli._parser()
    compare = parser._subparsers._group_actions[0].choices["compare"]
    options = {flag for action in compare._actions for flag in action.option_strings}
    fields = {field.name for field in dataclasses.fields(ComparisonSettings)}
    python_only = {"validation_fraction", "try_gcs"}
    assert {field for field in fields if cli.option(field) not in options} == python_only


def test_the_settings_module_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys\n"
        "from keras_adaptive_loss.comparison.settings import ComparisonSettings\n"
        "ComparisonSettings(dataset='iris', losses='crossentropy,focal', seeds=3)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "[]"


def test_compare_takes_the_settings_or_the_same_names_as_keywords():
    settings = ComparisonSettings(dataset="iris", losses=["crossentropy"], **QUICK)
    by_settings = kal.compare(settings)
    by_keywords = kal.compare("iris", ["crossentropy"], **QUICK)
    replaced = kal.compare(settings, ["focal"], epochs=2)
    strip = lambda config: {k: v for k, v in config.items() if k != "total_seconds"}  # noqa: E731
    assert strip(by_settings.config) == strip(by_keywords.config)
    assert by_settings.runs[0].test_metrics == by_keywords.runs[0].test_metrics
    assert replaced.config["losses"] == ["focal"] and replaced.config["epochs"] == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        kal.compare("iris", ["crossentropy"], epoch=1)


def test_results_json_keeps_its_config_keys():
    # resume compares these keys with a saved results.json: renaming one breaks resuming.
    result = kal.compare("iris", ["crossentropy"], **QUICK)
    assert set(result.config) == {
        "dataset", "losses", "model", "seeds", "epochs", "batch_size", "learning_rate",
        "strategy", "replicas", "jit_compile", "validation_fraction", "reference", "optimizer",
        "label_noise", "noise_type", "imbalance", "train_subset", "evaluation", "train_size",
        "test_size", "num_classes", "class_names", "data_sha256", "label_column", "data_dir",
        "loss_setups", "total_seconds",
    }  # fmt: skip
    assert result.config["loss_setups"]["crossentropy"]["loss"]


def _runtime_imports(path: str) -> set[str]:
    """The modules a file imports when it runs, at module level or inside functions: every
    import outside ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node):
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node):
            if node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    with open(path) as file:
        Imports().visit(ast.parse(file.read()))
    return found


def test_the_comparison_modules_import_each_other_without_a_loop():
    package = os.path.dirname(kal.comparison.settings.__file__)
    prefix = "keras_adaptive_loss.comparison."
    modules = {
        name[:-3]: os.path.join(package, name)
        for name in os.listdir(package)
        if name.endswith(".py") and name != "__init__.py"
    }
    graph = {
        module: {
            name[len(prefix) :].split(".")[0]
            for name in _runtime_imports(path)
            if name.startswith(prefix) and name[len(prefix) :].split(".")[0] in modules
        }
        - {module}
        for module, path in modules.items()
    }
    # Imports inside functions count: a lazy import is still a loop.
    state: dict[str, str] = {}

    def walk(module, trail):
        state[module] = "open"
        for imported in graph[module]:
            assert state.get(imported) != "open", " -> ".join([*trail, module, imported])
            if imported not in state:
                walk(imported, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    assert "runner" not in graph["report"] and "report" in graph["result"]
    settings_imports = _runtime_imports(modules["settings"])
    assert not {name for name in settings_imports if name.split(".")[0] in ("keras", "tensorflow")}
