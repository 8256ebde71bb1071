"""The README's commands and example stay in step with the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_set_up_then_test_command_in_one_checkout():
    install, test = code_blocks("bash")
    assert "pip install torch==2.13.0" in install and "pyromix fit vae --data digits" in install
    ci_commands = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert install.strip() in ci_commands and test.strip() in ci_commands
    assert ci_commands.index(install.strip()) < ci_commands.index(test.strip())
    assert not any(line.startswith("cd ") for line in ci_commands[ci_commands.index(install.strip()):])


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    example = code_blocks("python")[0]
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    metrics = namespace["metrics"]
    assert metrics["test_elbo"] <= metrics["test_log_likelihood"] < 0
    assert (tmp_path / "runs/example/manifold.png").is_file()
    assert namespace["z"].shape[1] == 2 and namespace["samples"].shape == (16, 64)


def test_readme_clustering_example_runs(monkeypatch):
    example = code_blocks("python")[1]
    example = example.replace("epochs=20", "epochs=2, pretrain_epochs=2, hidden=(32,)")  # fast
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["labels"].shape == (1797,) and namespace["probs"].shape == (1797, 10)
    assert (namespace["clusters"] == 3).all() and namespace["images"].shape == (10, 64)


def test_readme_own_model_example_runs(tmp_path, monkeypatch):
    from pyromix.recipes import recipe_origin, unregister_recipe

    monkeypatch.chdir(tmp_path)
    example = code_blocks("python")[2]
    assert len(example.strip().splitlines()) <= 31  # "a complete example of at most ~30 lines"
    namespace = {}
    exec(compile(example.replace("epochs=30", "epochs=2, limit=100"), "README.md", "exec"), namespace)
    try:
        metrics = namespace["metrics"]
        assert metrics["model"] == "student" and "samples" in metrics["skipped"]
        assert metrics["test_elbo"] <= metrics["test_log_likelihood"] < 0
        assert recipe_origin("student")["kind"] == "module" and (tmp_path / "runs/student").is_dir()
    finally:
        unregister_recipe("student")
