"""``hybrid-act-record``: scripted demonstrations -> a local LeRobotDataset (v3).

    hybrid-act-record --task aloha_transfer_cube --episodes 50 \\
        --repo-id local/aloha_sim_transfer_cube_scripted --root data/aloha_tc --image-size 96x128 --cameras top

Task protocol (``TASKS`` maps a task name to ``"module:ClassName"``, imported lazily; the class is built with
no arguments):

- ``fps: int`` and ``task_description: str``;
- ``features(image_size: tuple[int, int], cameras: list[str]) -> dict``: LeRobotDataset feature spec;
- ``record_episode(seed: int, noise: float, image_size, cameras) -> (frames, success, episode_info)``:
  ``frames`` is a list of dicts keyed like ``features`` (without ``"task"``, which is added here);
  ``episode_info`` is a JSON-able dict;
- optional ``close()`` and ``default_image_size: tuple[int, int]`` (used when ``--image-size`` is not given;
  otherwise ``image_size`` may be ``None``);
- optional ``routes: tuple[int, ...]``: a multimodal task's modes; ``record_episode`` then also takes
  ``route=`` and ``--routes-per-layout K`` demonstrates every layout (seed) once with each of the first K routes
  (same layout, same style), so that on the training set p(route | observation) is uniform and cannot be
  memorised. A layout is kept only if all its K episodes succeed.

Seeds: episode attempts use seeds ``seed, seed + 1, ...``; failed attempts are dropped and counted, and
attempts continue until ``--episodes`` successes (at most ``--max-attempts``). Demo seeds must stay out of
``[1000, 100000)``, the range LeRobot's ``lerobot-eval`` draws evaluation seeds from (``--seed`` defaults to
1000 and increases by one per episode), so a policy is never evaluated on the object poses it was trained on.
The seeds used are written to ``<root>/meta/hybrid_act_recording.json`` (dataset episode ``i`` <-> ``seeds[i]``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

TASKS: dict[str, str] = {
    "aloha_transfer_cube": "lerobot_hybrid_act.aloha.recording:AlohaTransferCubeRecorder",
    "aloha_insertion": "lerobot_hybrid_act.aloha.recording:AlohaInsertionRecorder",
    "docking": "lerobot_hybrid_act.docking.recording:DockingRecorder",
    # the same demos in the feature layout of the robot types docking_sim / aloha_sim (lerobot-rollout, async)
    "docking_sim": "lerobot_hybrid_act.robots.docking_sim:DockingSimRecorder",
    "aloha_sim_transfer_cube": "lerobot_hybrid_act.robots.aloha_sim:AlohaSimTransferCubeRecorder",
    "aloha_sim_insertion": "lerobot_hybrid_act.robots.aloha_sim:AlohaSimInsertionRecorder",
}

# LeRobot's eval seeds: `lerobot-eval --seed` defaults to 1000, episode i uses seed + i.
EVAL_SEED_START = 1000
EVAL_SEED_END = 100_000  # demo seeds must avoid [EVAL_SEED_START, EVAL_SEED_END)
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 16, 2048
RECORDING_INFO_FILE = "meta/hybrid_act_recording.json"


class RecordError(Exception):
    """A user error: printed without a traceback by `main`."""


def parse_image_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise RecordError(f"--image-size must look like HxW (e.g. 96x128), got {text!r}")
    h, w = int(m.group(1)), int(m.group(2))
    for name, v in (("height", h), ("width", w)):
        if not MIN_IMAGE_SIDE <= v <= MAX_IMAGE_SIDE:
            raise RecordError(
                f"--image-size {text!r}: {name} {v} is outside [{MIN_IMAGE_SIDE}, {MAX_IMAGE_SIDE}]"
            )
        if v % 2:
            raise RecordError(f"--image-size {text!r}: {name} {v} must be even (video encoding)")
    return h, w


def parse_cameras(values: list[str] | None) -> list[str]:
    cams: list[str] = []
    for v in values or []:
        for c in str(v).split(","):
            c = c.strip()
            if c and c.lower() != "none" and c not in cams:
                cams.append(c)
    return cams


def load_task(name: str):
    """Instantiate the recorder class registered for task `name`."""
    if name not in TASKS:
        raise RecordError(f"Unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}")
    target = TASKS[name]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise RecordError(
                f"Task {name!r} is registered as {target!r}, but module {module_name!r} is not available "
                f"(not implemented or not installed)."
            ) from e
        raise
    cls = getattr(module, class_name, None)
    if cls is None:
        raise RecordError(f"Task {name!r}: module {module_name!r} has no class {class_name!r}.")
    return cls()


def check_seed_range(seed: int, max_attempts: int) -> None:
    if seed < 0:
        raise RecordError(f"--seed must be >= 0, got {seed}")
    lo, hi = seed, seed + max_attempts  # seeds used are within [lo, hi)
    if lo < EVAL_SEED_END and hi > EVAL_SEED_START:
        raise RecordError(
            f"Demo seeds [{lo}, {hi}) would overlap LeRobot's evaluation seeds "
            f"[{EVAL_SEED_START}, {EVAL_SEED_END}) (lerobot-eval starts at --seed=1000). "
            f"Use --seed so that seed + max attempts <= {EVAL_SEED_START}, or --seed >= {EVAL_SEED_END}."
        )


def check_root(root: Path, overwrite: bool) -> None:
    """Never write into a non-empty directory; `--overwrite` only replaces an existing LeRobot dataset."""
    if root.exists() and not root.is_dir():
        raise RecordError(f"--root {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        is_dataset = (root / "meta" / "info.json").is_file()
        if not is_dataset:
            raise RecordError(
                f"--root {root} is not empty and does not hold a LeRobot dataset; refusing to write into it."
            )
        if not overwrite:
            raise RecordError(
                f"--root {root} already holds a LeRobot dataset; refusing to overwrite it "
                f"(pass --overwrite to replace it, or choose another --root)."
            )
        shutil.rmtree(root)
    if root.is_dir():  # empty directory: LeRobotDatasetMetadata.create wants to create it itself
        root.rmdir()


def check_routes(task, name: str, routes_per_layout: int, episodes: int) -> tuple[int, ...] | None:
    """The routes to demonstrate per layout (None: the task's own draw, one episode per seed)."""
    if routes_per_layout == 1:
        return None
    if routes_per_layout < 1:
        raise RecordError(f"--routes-per-layout must be >= 1, got {routes_per_layout}")
    task_routes = tuple(getattr(task, "routes", ()))
    if not task_routes:
        raise RecordError(
            f"--routes-per-layout {routes_per_layout}: task {name!r} has no routes to choose from (docking has); "
            "use --routes-per-layout 1."
        )
    if routes_per_layout > len(task_routes):
        raise RecordError(f"--routes-per-layout {routes_per_layout}: task {name!r} has only {len(task_routes)} routes.")
    if episodes % routes_per_layout:
        raise RecordError(
            f"--episodes ({episodes}) must be a multiple of --routes-per-layout ({routes_per_layout}): every layout "
            f"is demonstrated once per route (e.g. --episodes {routes_per_layout * max(1, episodes // routes_per_layout)})."
        )
    return task_routes[:routes_per_layout]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hybrid-act-record",
        description="Record scripted demonstrations into a local LeRobotDataset (v3).",
    )
    p.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--episodes", type=int, required=True, help="number of successful episodes to keep")
    p.add_argument("--repo-id", required=True, help="dataset repo id, e.g. local/aloha_sim_transfer_cube_scripted")
    p.add_argument("--root", default=None, help="dataset directory (default: $HF_LEROBOT_HOME/<repo-id>)")
    p.add_argument(
        "--image-size",
        default=None,
        help="camera image size HxW (default: the task's default_image_size; 480x640 for ALOHA, as gym-aloha)",
    )
    p.add_argument(
        "--cameras",
        nargs="*",
        default=["top"],
        help="cameras to record (space or comma separated; 'none' or nothing for a state-only dataset)",
    )
    p.add_argument("--noise", type=float, default=0.0, help="scripted-expert noise (ALOHA: uniform, metres, on waypoints; docking: std of the action noise)")
    p.add_argument("--seed", type=int, default=0, help="first demo seed (episode attempts use seed, seed+1, ...)")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        help="give up after this many attempts (default: episodes + max(5, episodes // 4))",
    )
    p.add_argument(
        "--routes-per-layout",
        type=int,
        default=1,
        help="multimodal tasks (docking): demonstrate every layout once per route (2 = left and right); "
        "--episodes counts episodes, so it must be a multiple of this",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --root")
    p.add_argument("--push-to-hub", action="store_true", help="push the dataset to the Hugging Face Hub")
    p.add_argument("--vcodec", default="libsvtav1", help="video codec (libsvtav1, h264, ...)")
    return p


def record(args: argparse.Namespace) -> dict:
    if args.task not in TASKS:
        raise RecordError(f"Unknown task {args.task!r}; available tasks: {', '.join(sorted(TASKS))}")
    if args.episodes is None or args.episodes < 1:
        raise RecordError(f"--episodes must be >= 1, got {args.episodes}")
    if not math.isfinite(args.noise) or args.noise < 0:
        raise RecordError(f"--noise must be a finite number >= 0, got {args.noise}")
    image_size = parse_image_size(args.image_size) if args.image_size is not None else None
    cameras = parse_cameras(args.cameras)
    max_attempts = args.max_attempts if args.max_attempts is not None else args.episodes + max(5, args.episodes // 4)
    if max_attempts < args.episodes:
        raise RecordError(f"--max-attempts ({max_attempts}) must be >= --episodes ({args.episodes})")
    check_seed_range(args.seed, max_attempts)

    task = load_task(args.task)
    routes = check_routes(task, args.task, args.routes_per_layout, args.episodes)
    if image_size is None:
        image_size = getattr(task, "default_image_size", None)
    try:
        features = task.features(image_size, cameras)
    except ValueError as e:
        raise RecordError(str(e)) from e

    if image_size is None:  # the task chose its own size: report what it declared
        shapes = [tuple(f["shape"][:2]) for f in features.values() if f.get("dtype") in ("video", "image")]
        image_size = shapes[0] if shapes else None

    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.constants import HF_LEROBOT_HOME

    root = Path(args.root) if args.root else HF_LEROBOT_HOME / args.repo_id
    check_root(root, args.overwrite)

    from tqdm import tqdm

    create_kwargs = {}
    if cameras:
        from lerobot.configs.video import RGBEncoderConfig

        create_kwargs["rgb_encoder"] = RGBEncoderConfig(vcodec=args.vcodec)
    dataset = LeRobotDataset.create(
        repo_id=args.repo_id,
        fps=task.fps,
        features=features,
        root=root,
        robot_type="aloha" if args.task.startswith("aloha") else None,
        use_videos=bool(cameras),
        video_backend="pyav",  # decoding backend if read back; torchcodec needs system FFmpeg libraries
        streaming_encoding=bool(cameras),  # encode while recording instead of writing PNGs first
        **create_kwargs,
    )

    kept_seeds, failed_seeds, episodes_info = [], [], []
    attempts = 0
    t0 = time.perf_counter()
    bar = tqdm(total=args.episodes, desc=f"recording {args.task}", unit="ep")
    try:
        for seed in range(args.seed, args.seed + max_attempts):
            if len(kept_seeds) >= args.episodes:
                break
            attempts += 1
            if routes is None:
                episodes = [task.record_episode(seed, args.noise, image_size, cameras)]
            else:
                episodes = [task.record_episode(seed, args.noise, image_size, cameras, route=r) for r in routes]
            if not all(success and frames for frames, success, _ in episodes):
                failed_seeds.append(seed)
                bar.set_postfix(failed=len(failed_seeds))
                continue
            for frames, _, info in episodes:
                for frame in frames:
                    frame = dict(frame)
                    frame.setdefault("task", task.task_description)
                    dataset.add_frame(frame)
                dataset.save_episode()
                kept_seeds.append(seed)
                episodes_info.append({"episode_index": len(kept_seeds) - 1, "length": len(frames), **info})
                bar.update(1)
            bar.set_postfix(failed=len(failed_seeds))
    finally:
        bar.close()
        dataset.finalize()
        if hasattr(task, "close"):
            task.close()
    elapsed = time.perf_counter() - t0

    summary = {
        "task": args.task,
        "task_description": task.task_description,
        "repo_id": args.repo_id,
        "fps": task.fps,
        "image_size": list(image_size) if image_size is not None else None,
        "cameras": cameras,
        "noise": args.noise,
        "first_seed": args.seed,
        "attempts": attempts,
        "episodes": len(kept_seeds),
        "routes_per_layout": args.routes_per_layout,
        "seeds": kept_seeds,
        "failed_seeds": failed_seeds,
        "scripted_success_rate": len(kept_seeds) / args.routes_per_layout / attempts if attempts else 0.0,
        "seconds_per_attempt": elapsed / max(attempts, 1),
        "eval_seed_range_excluded": [EVAL_SEED_START, EVAL_SEED_END],
        "episodes_info": episodes_info,
    }
    (root / RECORDING_INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / RECORDING_INFO_FILE).write_text(json.dumps(summary, indent=2))

    print(
        f"{args.task}: kept {len(kept_seeds)} scripted episodes from {attempts} attempts "
        f"(success rate {summary['scripted_success_rate']:.1%}; failed seeds {failed_seeds}); "
        f"{summary['seconds_per_attempt']:.2f} s/episode; dataset at {root}"
    )
    if len(kept_seeds) < args.episodes:
        print(
            f"warning: only {len(kept_seeds)} of the {args.episodes} requested episodes succeeded within "
            f"{max_attempts} attempts",
            file=sys.stderr,
        )
    if args.push_to_hub:
        if not kept_seeds:
            raise RecordError("no successful episode: nothing to push")
        LeRobotDataset(args.repo_id, root=root).push_to_hub()
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = record(args)
    except RecordError as e:
        print(f"hybrid-act-record: error: {e}", file=sys.stderr)
        return 2
    return 0 if summary["episodes"] >= args.episodes else 1


if __name__ == "__main__":
    sys.exit(main())
