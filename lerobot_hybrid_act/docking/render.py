"""Top-down RGB rendering of the docking scene with PIL (no display needed).

The static part (floor, walls, obstacle, port) is drawn once per layout and image size; each frame only
pastes the vehicle (a disc with a heading wedge) onto a copy.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .env import ARENA_X, ARENA_Y, Y_MAX, DockingLayout

FLOOR = (236, 236, 228)
WALL = (60, 60, 60)
OBSTACLE = (200, 60, 50)
PORT = (40, 160, 70)
VEHICLE = (40, 90, 200)
NOSE = (250, 210, 40)


class TopDownRenderer:
    def __init__(self, layout: DockingLayout, size: tuple[int, int], vehicle_radius: float = 0.2):
        self.h, self.w = size
        self.layout = layout
        self.vehicle_radius = vehicle_radius
        # Uniform scale, arena centred (letterboxed with wall colour).
        self.scale = min((self.w - 2) / ARENA_X, (self.h - 2) / ARENA_Y)
        self.ox = (self.w - ARENA_X * self.scale) / 2
        self.oy = (self.h - ARENA_Y * self.scale) / 2
        bg = Image.new("RGB", (self.w, self.h), WALL)
        d = ImageDraw.Draw(bg)
        d.rectangle([self.px(0, Y_MAX), self.px(ARENA_X, -Y_MAX)], fill=FLOOR)
        cx, cy = self.px(layout.obstacle_x, layout.obstacle_y)
        rr = layout.obstacle_radius * self.scale
        d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=OBSTACLE)
        # Port: a U-shaped slot opening towards -port_heading, plus a target dot.
        c, s = math.cos(layout.port_heading), math.sin(layout.port_heading)
        L, W = 0.45, 0.35
        pts = []
        for fx, fy in ((-L, W), (L * 0.6, W), (L * 0.6, -W), (-L, -W)):
            pts.append(self.px(layout.port_x + fx * c - fy * s, layout.port_y + fx * s + fy * c))
        lw = max(1, int(round(0.06 * self.scale)))
        d.line(pts, fill=PORT, width=lw)
        pr = max(1.0, 0.08 * self.scale)
        px, py = self.px(layout.port_x, layout.port_y)
        d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=PORT)
        self.background = bg

    def px(self, x: float, y: float) -> tuple[float, float]:
        """World (x, y) -> pixel (col, row)."""
        return self.ox + x * self.scale, self.oy + (Y_MAX - y) * self.scale

    def draw(self, x: float, y: float, heading: float) -> np.ndarray:
        img = self.background.copy()
        d = ImageDraw.Draw(img)
        cx, cy = self.px(x, y)
        r = max(1.5, self.vehicle_radius * self.scale)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=VEHICLE)
        c, s = math.cos(heading), math.sin(heading)
        # heading wedge (image y axis points down)
        tip = (cx + 1.6 * r * c, cy - 1.6 * r * s)
        left = (cx - 0.5 * r * s, cy - 0.5 * r * c)
        right = (cx + 0.5 * r * s, cy + 0.5 * r * c)
        d.polygon([tip, left, right], fill=NOSE)
        return np.asarray(img, dtype=np.uint8)
