"""Each experiment at smoke scale: its report and figures come from its runs' own metrics."""

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from resnets.cli import main
from resnets.errors import UserError
from resnets.experiments import EXPERIMENTS, SCALES, runs_of
from resnets.experiments.runner import iterations_done, prepare, run_config, run_models, spec
from resnets.experiments.degradation import compare
from resnets.experiments.responses import response_layers, response_stds
from resnets.training import load_model
from resnets.data import DeviceLoader, load_data
from resnets.training.plots import draw_runs, pyplot

from test_data import write_cifar10_py  # tests/ is on the path, as for test_reference

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """An output folder holding Fig. 6's runs at smoke scale, which the other experiments reuse.
    Made here rather than by the first test, so that a test needs no other to have run before it
    (under xdist, each worker that takes one of these tests makes its own)."""
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "degradation", "--scale", "smoke", "--out", str(out)]) == 0
    return out


def rows(report: str) -> dict[str, list[str]]:
    """The Markdown table's body rows (not its header), keyed by their first cell."""
    table, in_table = {}, False
    for line in report.splitlines():
        if not line.startswith("|"):
            in_table = False
        elif not in_table:
            in_table = True  # the header
        elif not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            table[cells[0]] = cells[1:]
    return table


def last(out, key):
    lines = (out / "runs" / key / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def test_degradation(out):
    report = (out / "degradation.md").read_text()
    assert (out / "degradation.png").read_bytes()[:8] == PNG
    table = rows(report)
    for model in ["plain20", "plain32", "plain44", "plain56", "resnet20", "resnet32", "resnet44", "resnet56"]:
        record = last(out, model)
        assert record["step"] == 24
        assert table[model][0] == f"{100 * record['train_error']:.2f}"
        assert table[model][1] == f"{100 * record['test_error']:.2f}"
    assert table["resnet20"][2] == "8.75"
    # The verdicts of Fig. 6 read the shallowest and deepest runs' own final training errors.
    train = {m: last(out, m)["train_error"] for m in table}
    deeper = "higher" if train["plain56"] > train["plain20"] else "lower"
    assert f"plain-56 ends with {deeper} training error than plain-20" in report
    deeper = "lower" if train["resnet56"] < train["resnet20"] else "higher"
    assert f"ResNet-56 ends with {deeper} training error than ResNet-20" in report
    assert "scale `smoke`" in report and "digits" in report and "wall time" in report
    # The paper's recipe in fp32 on a CPU, even one with native bf16 (where `auto` would pick bf16).
    assert json.loads((out / "runs" / "resnet20" / "config.json").read_text())["precision"] == "fp32"


def test_cifar_table_reuses_runs(out, capsys):
    assert main(["reproduce", "cifar-table", "--scale", "smoke", "--out", str(out)]) == 0
    assert "reusing the finished run" in capsys.readouterr().out  # resnet20..56 came from degradation
    table = rows((out / "cifar-table.md").read_text())
    assert table["resnet110"][:2] == ["110", "1.73M"]
    assert table["resnet56"][-1] == "6.97"
    for model in ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]:
        results = json.loads((out / "runs" / model / "results.json").read_text())
        assert table[model][3] == f"{100 * results['test_error']:.2f}"


def test_shortcuts(out):
    assert main(["reproduce", "shortcuts", "--scale", "smoke", "--out", str(out)]) == 0
    table = rows((out / "shortcuts.md").read_text())
    assert [table[k][0] for k in ["plain20", "resnet20", "resnet20-B", "resnet20-C"]] == ["none (plain)", "A", "B", "C"]
    params = {k: int(table[k][1].replace(",", "")) for k in table}
    assert params["plain20"] == params["resnet20"] == 269_722  # option A adds no parameters
    assert params["plain20"] < params["resnet20-B"] < params["resnet20-C"]
    for key in ["plain20", "resnet20", "resnet20-B", "resnet20-C"]:
        error = json.loads((out / "runs" / key / "results.json").read_text())["test_error"]
        assert table[key][2] == f"{100 * error:.2f}"
    assert table["resnet20-C"][3] == "24.19"


def test_responses(out):
    assert main(["reproduce", "responses", "--scale", "smoke", "--out", str(out)]) == 0
    assert (out / "responses.png").read_bytes()[:8] == PNG
    table = rows((out / "responses.md").read_text())
    assert table["resnet20"][0] == "19" and table["resnet56"][0] == "55"  # 3x3 layers: 6n + 1

    # One response recomputed independently: the residual branch F(x) of a block, on its real input.
    model, meta = load_model(out / "runs" / "resnet20")
    data = load_data("digits").subset(None, 200)
    batches = list(DeviceLoader(data.test_images, data.test_labels, 500, train=False,
                                mean=torch.tensor(meta["mean"]), std=torch.tensor(meta["std"])))
    block = model.layer2[1]
    inputs = []
    handle = block.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    with torch.no_grad():
        model(batches[0][0])
        expected = block.residual(inputs[0]).std(unbiased=False).item()
    handle.remove()
    names = [name for name, _ in response_layers(model)]
    assert response_stds(model, batches)[names.index("layer2.1.bn2")] == pytest.approx(expected, rel=1e-4)
    mean = sum(response_stds(model, batches)) / len(names)
    assert table["resnet20"][1] == f"{mean:.3f}"
    assert json.loads((out / "responses.json").read_text())["resnet20"]["resnet20"] == pytest.approx(response_stds(model, batches))
    # Fig. 7 (bottom), rank by rank: the sorted curves compared, counted from the stds themselves.
    plain, _ = load_model(out / "runs" / "plain20")
    ours, theirs = sorted(response_stds(model, batches), reverse=True), sorted(response_stds(plain, batches), reverse=True)
    below = sum(ours[i] < theirs[i] for i in range(19))
    assert f"ResNet-20 {mean:.3f} vs plain-20 {sum(theirs) / 19:.3f}, sorted by size below at {below} of the 19 largest ranks" \
        in (out / "responses.md").read_text()


def test_seeds_give_each_network_mean_and_standard_deviation(out):
    # Seed 0's runs are those already in OUT; --seeds 2 adds a second run of each network.
    assert main(["reproduce", "shortcuts", "--scale", "smoke", "--seeds", "2", "--out", str(out)]) == 0
    report = (out / "shortcuts.md").read_text()
    assert "- seeds: 2 runs of each network (seeds 0 to 1" in report
    table = table_of_seeds = rows(report)
    for key in ["plain20", "resnet20", "resnet20-B", "resnet20-C"]:
        first, second = out / "runs" / key, out / "runs" / f"{key}-seed1"
        assert [json.loads((d / "config.json").read_text())["seed"] for d in (first, second)] == [0, 1]
        a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
        assert not all(torch.equal(a[k], b[k]) for k in a)  # another initialization and batch order
        errors = np.array([json.loads((d / "results.json").read_text())["test_error"] for d in (first, second)])
        assert table[key][2] == f"{100 * errors.mean():.2f} ± {100 * errors.std(ddof=1):.2f}"
    # A report over seeds not all trained says how many each network has.
    assert main(["reproduce", "cifar-table", "--scale", "smoke", "--seeds", "2", "--report-only", "--out", str(out)]) == 0
    table = rows((out / "cifar-table.md").read_text())
    assert " ± " in table["resnet20"][3]
    error = json.loads((out / "runs" / "resnet32" / "results.json").read_text())["test_error"]
    assert table["resnet32"][3] == f"{100 * error:.2f} (1 of 2 seeds finished)"
    # --report-only alone reports as many seeds as OUT holds.
    (out / "shortcuts.md").unlink()
    assert main(["reproduce", "shortcuts", "--scale", "smoke", "--report-only", "--out", str(out)]) == 0
    assert rows((out / "shortcuts.md").read_text())["resnet20"][2] == table_of_seeds["resnet20"][2]
    # One network's seeds share a colour and a legend entry in the figures.
    fig, ax = pyplot().subplots()
    draw_runs(ax, [out / "runs" / "resnet20", out / "runs" / "resnet20-seed1", out / "runs" / "plain20"],
              ["ResNet-20", "ResNet-20", "plain-20"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ResNet-20", "plain-20"]
    lines = ax.get_lines()  # training and test curves of each run, in turn
    assert lines[0].get_color() == lines[2].get_color() != lines[4].get_color()


def test_fig6_findings_read_the_means_and_count_the_seeds():
    train_error = {"plain20": [0.10, 0.12, None], "plain56": [0.20, 0.11, 0.30],
                   "resnet20": [0.10], "resnet56": [0.05]}
    plain, residual = compare(train_error, 20, 56)
    assert plain == ("- plain-56 ends with higher training error than plain-20 (means 20.33% vs 11.00%; higher in 1 "
                     "of 2 seeds finished by both): the degradation problem, as in the paper.")
    assert residual == ("- ResNet-56 ends with lower training error than ResNet-20 (5.00% vs 10.00%): depth helps once "
                        "shortcuts are added, as in the paper.")


@pytest.mark.parametrize("scale", list(SCALES))
def test_responses_measure_the_degradation_runs(scale):
    # Fig. 7 is measured on Fig. 6's networks: at every scale, no run of its own.
    fig6 = {s.key for s in EXPERIMENTS["degradation"].specs(SCALES[scale])}
    fig7 = [s.key for s in EXPERIMENTS["responses"].specs(SCALES[scale])]
    assert len(fig7) == 4 and set(fig7) <= fig6


def test_unknown_experiment_is_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "fig9"])
    assert e.value.code == 2


@pytest.mark.slow
def test_jobs_give_the_results_of_one_job(tmp_path):
    # Each job gets an equal share of the threads: one job on one thread computes what two
    # jobs of one thread each do, bit for bit.
    specs, scale, threads = [spec("resnet20"), spec("plain20")], SCALES["smoke"], torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_models(specs, scale, "digits", tmp_path / "one", jobs=1)
        torch.set_num_threads(2)
        two = run_models(specs, scale, "digits", tmp_path / "two", jobs=2)
    finally:
        torch.set_num_threads(threads)
    for key in ("resnet20", "plain20"):
        a, b = load_file(one[key] / "model.safetensors"), load_file(two[key] / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), key
        timing = ("images_per_s", "elapsed")
        strip = lambda d: [{k: v for k, v in json.loads(line).items() if k not in timing}
                           for line in (d / "metrics.jsonl").read_text().splitlines()]
        assert strip(one[key]) == strip(two[key])
        assert "done: test accuracy" in (two[key] / "train.log").read_text()


def test_a_failed_job_is_named_and_the_others_finish(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "runs" / "resnet20"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{}")  # not this scale's run: refused before any job starts
    with pytest.raises(UserError, match="another configuration"):
        run_models([spec("resnet20")], SCALES["smoke"], "digits", tmp_path, jobs=2)
    # Data that is not there is refused once, before any job starts or any run is configured (one job
    # too: its configs would refuse the right --data as "another configuration").
    for jobs in ("2", "1"):
        assert main(["reproduce", "shortcuts", "--scale", "smoke", "--data", str(tmp_path / "missing"), "--jobs", jobs,
                     "--out", str(tmp_path / "other")]) == 2
        assert "no data set" in capsys.readouterr().err and not (tmp_path / "other" / "runs").exists()
    # A job that fails (here: its training state is not one) is named; the others finish.
    state = tmp_path / "ok" / "runs" / "resnet20-B" / "checkpoints" / "last_state.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal: the jobs' progress bar
    assert main(["reproduce", "shortcuts", "--scale", "smoke", "--jobs", "2", "--only", "resnet20-B,plain20",
                 "--out", str(tmp_path / "ok")]) == 2
    err = capsys.readouterr().err
    assert "2 runs, 2 at a time:   0%|" in err and "| 24/48 [" in err  # 2 runs of 24 iterations, one trained
    assert f"1 of 2 runs failed: {state.parents[1] / 'train.log'}" in err
    assert "cannot read training state" in (state.parents[1] / "train.log").read_text()
    assert (tmp_path / "ok" / "runs" / "plain20" / "results.json").is_file()


def test_an_unfinished_run_goes_on_with_the_machine_settings_of_the_command(tmp_path):
    # A run begun on a CPU in fp32 and resumed by `reproduce --compile` on a GPU trains on in bf16, compiled;
    # a finished run keeps the record of how it ran.
    run_dir, scale = tmp_path / "plain44", SCALES["smoke"]

    def config(**machine):
        return run_config(spec("plain44"), scale, "digits", run_dir, machine)

    assert not prepare(run_dir, config(precision="fp32", compile=False))
    assert not prepare(run_dir, config(precision="bf16", compile=True))
    written = json.loads((run_dir / "config.json").read_text())
    assert (written["precision"], written["compile"], written["out"]) == ("bf16", True, str(run_dir))
    (run_dir / "results.json").write_text("{}")
    assert prepare(run_dir, config(precision="fp32", compile=False))
    assert json.loads((run_dir / "config.json").read_text())["precision"] == "bf16"
    with pytest.raises(UserError, match="another configuration"):  # what it computes may not change
        prepare(run_dir, run_config(spec("plain44"), SCALES["cpu"], "digits", run_dir, {}))


def test_iterations_done_read_the_last_finished_epoch(tmp_path):
    assert iterations_done(tmp_path) == 0  # not started
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "step": 8 * (e + 1)}) + "\n" for e in range(3)))
    assert iterations_done(tmp_path) == 24
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 3, "st')  # the fourth epoch's line, half written by the job
    assert iterations_done(tmp_path) == 24


def test_priority_order_of_all():
    keys = [s.key for s in runs_of(list(EXPERIMENTS), SCALES["full"])]
    assert keys[:7] == ["resnet20", "resnet56", "resnet32", "resnet44", "resnet110", "plain20", "plain56"]
    assert len(keys) == len(set(keys)) == 12 and keys[-1] == "resnet1202"


def test_only_trains_the_named_runs(tmp_path, capsys):
    assert main(["reproduce", "cifar-table", "--scale", "smoke", "--only", "resnet20", "--out", str(tmp_path)]) == 0
    assert [d.name for d in (tmp_path / "runs").iterdir()] == ["resnet20"]
    table = rows((tmp_path / "cifar-table.md").read_text())
    assert table["resnet20"][3] == f"{100 * last(tmp_path, 'resnet20')['test_error']:.2f}"
    assert table["resnet32"][3] == "not run"
    assert main(["reproduce", "cifar-table", "--scale", "smoke", "--only", "resnet20,plain20", "--out", str(tmp_path)]) == 2
    assert "cifar-table at scale smoke has no run plain20; its runs: resnet20, resnet56," in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "cifar-table", "--only", ",", "--out", str(tmp_path)])
    assert e.value.code == 2 and "argument --only: names no run: ','" in capsys.readouterr().err


def test_report_only_shows_what_is_finished(tmp_path, capsys):
    (run,) = run_models([spec("resnet20")], SCALES["smoke"], "digits", tmp_path).values()
    partial = tmp_path / "runs" / "resnet32"
    partial.mkdir()
    (partial / "metrics.jsonl").write_text(json.dumps({"step": 8, "test_error": 0.5, "train_error": 0.6}) + "\n")
    assert main(["reproduce", "all", "--scale", "smoke", "--report-only", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "shortcuts: no report until" in printed and "responses: no report" not in printed
    # Fig. 7 measures the finished nets and says what the rest wait for.
    responses = (tmp_path / "responses.md").read_text()
    assert rows(responses)["resnet20"][0] == "19" and rows(responses)["plain20"][0] == "not run"
    assert "- ResNet responses smaller than the plain nets' at equal depth: waits for ResNet-56, plain-20, plain-56 to finish" in responses
    table = rows((tmp_path / "cifar-table.md").read_text())
    assert table["resnet20"][3] == f"{100 * json.loads((run / 'results.json').read_text())['test_error']:.2f}"
    assert table["resnet32"][3] == "unfinished: 8 of 24 iterations, 50.00 so far"
    assert table["resnet44"][3] == "not run"
    degradation = (tmp_path / "degradation.md").read_text()
    assert "waits for plain-20" in degradation and "over 1 run finished" in degradation
    device = json.loads((run / "results.json").read_text())["device"]
    assert f"- hardware: resnet20 on {device}; report written on " in degradation  # each run with its device
    # Fig. 6's table: each column the unfinished run's own error so far
    assert rows(degradation)["resnet32"][:2] == ["unfinished: 8 of 24 iterations, 60.00 so far",
                                                  "unfinished: 8 of 24 iterations, 50.00 so far"]
    assert not (tmp_path / "runs" / "resnet44").exists()  # nothing was trained
    assert main(["reproduce", "all", "--scale", "full", "--report-only", "--out", str(tmp_path / "none")]) == 2
    assert "holds no runs to report on" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_report_only_reads_the_data_its_runs_were_trained_on(tmp_path, capsys):
    folder, _ = write_cifar10_py(tmp_path / "elsewhere", n=200)  # smoke measures 200 test images
    (run,) = run_models([spec("resnet20")], SCALES["smoke"], str(folder), tmp_path).values()
    assert main(["reproduce", "responses", "--scale", "smoke", "--report-only", "--out", str(tmp_path)]) == 0
    assert f"- data: CIFAR-10 (`{folder}`)" in (tmp_path / "responses.md").read_text()  # not the default digits
    # Data the runs were not trained on is refused in one line, naming the run.
    assert main(["reproduce", "responses", "--scale", "smoke", "--report-only", "--out", str(tmp_path),
                 "--data", "digits"]) == 2
    assert f"digits has classes ['0', '1', '2', '3', '4']..., {run} ['airplane'," in capsys.readouterr().err
    # A report that measures nothing needs no data: the runs' weights name it.
    folder.rename(tmp_path / "moved")
    assert main(["reproduce", "degradation", "--scale", "smoke", "--report-only", "--out", str(tmp_path)]) == 0
    assert f"- data: CIFAR-10 (`{folder}`)" in (tmp_path / "degradation.md").read_text()


def test_a_run_configured_before_an_option_existed_is_reused(tmp_path, capsys):
    (run,) = run_models([spec("resnet20")], SCALES["smoke"], "digits", tmp_path).values()
    config = json.loads((run / "config.json").read_text())
    del config["skip_bad_images"]  # an option added after this run was made, at its default
    (run / "config.json").write_text(json.dumps(config))
    run_models([spec("resnet20")], SCALES["smoke"], "digits", tmp_path)
    assert "resnet20: reusing the finished run" in capsys.readouterr().out
