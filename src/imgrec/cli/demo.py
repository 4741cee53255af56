"""``imgrec demo``: the embedded default, offline — digits folder -> check -> split -> train
hog-svm and cnn-small -> compare -> evaluate the better one -> report.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imgrec.cli.output import console, to_json, write_text
from imgrec.cli.progress import RichProgress
from imgrec.cli.run_cmds import leaderboard_table, print_run_summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline end-to-end demo on scikit-learn's bundled digits")
    p.add_argument("--out", default="demo-output", help="folder for the images, runs and reports")
    p.add_argument("--epochs", type=int, default=12, help="epochs for cnn-small")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from imgrec.config import DataConfig, TrainConfig
    from imgrec.data import check_dataset, load_dataset, split_dataset, write_digits_folder
    from imgrec.evaluation import compare_runs, evaluate_run
    from imgrec.training import next_run_dir, train

    started = time.perf_counter()
    out = Path(args.out)
    folder = write_digits_folder(out / "digits", size=32)
    console.rule("1. data")
    ds = load_dataset(folder)
    console.print(f"wrote scikit-learn's digits as {len(ds)} PNG files in {folder}/<class>/")
    report = check_dataset(ds).to_dict()
    write_text(out / "data_check.json", to_json(report))
    problems = report.get("problems", [])
    console.print(f"data check: {len(problems)} note(s); report {out / 'data_check.json'}")
    splits = split_dataset(ds, val=0.1, test=0.1, seed=0)
    splits.save(out / "splits.json")
    console.print(
        f"split train/val/test = {len(splits.train)}/{len(splits.val)}/{len(splits.test)} -> {out / 'splits.json'}"
    )

    runs = []
    for model, extra in (("hog-svm", {}), ("cnn-small", {"epochs": args.epochs, "augment": "light"})):
        console.rule(f"2. train {model}")
        cfg = TrainConfig.from_dict({"model": model, "seed": 0, **extra})
        run = train(
            folder,
            cfg,
            data_config=DataConfig(),
            out=next_run_dir(out / "runs", model),
            splits=out / "splits.json",
            callbacks=[RichProgress()],
        )
        print_run_summary(run)
        runs.append(run.path)

    console.rule("3. compare")
    board = compare_runs(runs)
    console.print(leaderboard_table(board))

    console.rule("4. evaluate the better model on the test split")
    best = Path(board[0]["path"])
    result, eval_dir = evaluate_run(best)
    console.print(
        f"{best.name}: test accuracy {result.metrics['accuracy']:.4f}, macro F1 {result.metrics['macro_f1']:.4f}"
    )
    console.print(
        f"[bold green]done[/] in {time.perf_counter() - started:.0f} s. Open the report: {eval_dir / 'report.html'}"
    )
    console.print(f"training report of the best run: {best / 'report.html'}")
    return 0
