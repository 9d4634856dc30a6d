"""Draw rollouts from one docking start, coloured by the route they take: one panel per checkpoint.

    python examples/route_picture.py --checkpoint outputs/quickstart/train/hybrid_act_c_s1_4000/checkpoints/last/pretrained_model \
        --checkpoint <an act checkpoint> --seed 1000 --rollouts 8 --out routes.png

Every rollout starts from the same layout (env seed ``--seed``) with another torch seed, so a policy that samples
its route (hybrid_act_c draws z for each episode) can take both; one that averages the routes drives into the
obstacle. Blue: left of the obstacle, orange: right, red: a rollout that ended in a collision. The title of each
panel gives the policy type and its docked rollouts. Pure PIL (no matplotlib).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from lerobot_hybrid_act.ablation.probes import load_checkpoint, policy_act_fn
from lerobot_hybrid_act.docking.env import ARENA_X, ARENA_Y, DockingEnv
from lerobot_hybrid_act.docking.expert import ROUTE_LEFT, ROUTE_RIGHT
from lerobot_hybrid_act.docking.metrics import collect_rollout, route_label
from lerobot_hybrid_act.docking.render import TopDownRenderer

ROUTE_COLORS = {ROUTE_LEFT: (40, 110, 220), ROUTE_RIGHT: (240, 140, 20)}
COLLISION = (200, 0, 0)
W = 320  # panel width in pixels; the height follows the arena's aspect
H = int(W * ARENA_Y / ARENA_X) + 2


def panel(checkpoint: Path, seed: int, rollouts: int) -> tuple[Image.Image, str]:
    policy, pre, post = load_checkpoint(checkpoint)
    cameras = [k for k in policy.config.input_features if k.startswith("observation.images")]
    if cameras:
        raise SystemExit(f"{checkpoint}: this script drives state-only docking policies (state + environment state, "
                         f"as the `modes` recipe trains them); this one also reads {cameras}.")
    act = policy_act_fn(policy, pre, post)
    env = DockingEnv(render_mode=None)
    rolls = []
    for j in range(rollouts):
        policy.reset()
        torch.manual_seed(j)
        rolls.append(collect_rollout(env, act, seed=seed))
    renderer = TopDownRenderer(rolls[0]["layout"], (H, W))
    img = renderer.background.copy()
    draw = ImageDraw.Draw(img)
    for r in rolls:
        color = COLLISION if r["collision"] else ROUTE_COLORS.get(route_label(r["xy"], r["layout"]), (90, 90, 90))
        draw.line([renderer.px(x, y) for x, y in r["xy"]], fill=color, width=2)
    docked = sum(bool(r["success"]) for r in rolls)
    return img, f"{policy.config.type}: {docked}/{rollouts} docked"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, action="append", required=True, help="repeat for several panels")
    p.add_argument("--seed", type=int, default=1000, help="the docking layout every rollout starts from")
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("routes.png"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    panels = [panel(c, a.seed, a.rollouts) for c in a.checkpoint]
    title_h = 22
    sheet = Image.new("RGB", (W * len(panels), H + title_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (img, title) in enumerate(panels):
        sheet.paste(img, (i * W, title_h))
        draw.text((i * W + 6, 5), title, fill=(0, 0, 0))
        print(title)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"wrote {a.out} (layout seed {a.seed}, {a.rollouts} rollouts per policy)")


if __name__ == "__main__":
    main()
