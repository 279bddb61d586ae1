"""Distance benchmark: what the two grades of distance cost.

    .venv/bin/python -m bench.distance [--pairs 200000] [--seed 1]

Matching runs haversine on every candidate of every need; the bands people are shown follow
the WGS-84 geodesic (geopy), which ``geo.display_km`` computes only when a distance lies
within the sphere's error margin of a band edge. This times, on the same random pairs (two
~1 km grid-cell centres at most 100 km apart, anywhere between 60 S and 70 N): haversine, geopy's
geodesic for every pair (the baseline), and ``display_km``; it prints the share of pairs that
needed the geodesic, the largest relative difference haversine showed against the geodesic,
and checks that every band ``display_km`` gives is the geodesic's.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence

from geopy.distance import geodesic

from marketplace.geo import Point, display_km, distance_band, grid_cell_centre, haversine_km
from marketplace.geo.core import SPHERE_MARGIN


def pairs(n: int, seed: int) -> list[tuple[Point, Point]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lat, lon = rng.uniform(-60, 70), rng.uniform(-180, 180)
        km, bearing = 100 * math.sqrt(rng.random()), rng.uniform(0, 360)
        far = geodesic(kilometers=km).destination((lat, lon), bearing)
        out.append((grid_cell_centre(lat, lon), grid_cell_centre(far.latitude, far.longitude)))
    return out


def per_call_us(fn: Callable[[Point, Point], float], data: Sequence[tuple[Point, Point]],
                repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for a, b in data:
            fn(a, b)
        best = min(best, time.perf_counter() - t)
    return best / len(data) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    data = pairs(args.pairs, args.seed)
    exact = [float(geodesic((a.lat, a.lon), (b.lat, b.lon)).km) for a, b in data]
    sphere = [haversine_km(a.lat, a.lon, b.lat, b.lon) for a, b in data]
    shown = [display_km(a, b) for a, b in data]
    refined = sum(s != h for s, h in zip(shown, sphere, strict=True))
    worst = max(abs(h - e) / e for h, e in zip(sphere, exact, strict=True) if e > 0.5)
    wrong_sphere = sum(distance_band(h) != distance_band(e)
                       for h, e in zip(sphere, exact, strict=True))
    wrong_shown = sum(distance_band(s) != distance_band(e)
                      for s, e in zip(shown, exact, strict=True))

    sample = data[: min(len(data), 20_000)]
    hav = per_call_us(lambda a, b: haversine_km(a.lat, a.lon, b.lat, b.lon), sample)
    geo = per_call_us(lambda a, b: geodesic((a.lat, a.lon), (b.lat, b.lon)).km, sample, 1)
    disp = per_call_us(display_km, data)

    print(f"distance benchmark: {len(data):,} pairs of grid-cell centres, 0-100 km apart "
          f"(median {statistics.median(exact):.1f} km)")
    print(f"  haversine (matching)            {hav:8.2f} us per pair")
    print(f"  geopy geodesic, every pair      {geo:8.2f} us per pair  (baseline)")
    print(f"  display_km (bands shown)        {disp:8.2f} us per pair  -> "
          f"{geo / disp:,.0f}x cheaper than the baseline, {disp / hav:.1f}x haversine")
    print(f"  pairs that needed the geodesic: {refined:,} ({refined / len(data):.2%})")
    print(f"  largest haversine/geodesic difference: {worst:.3%} (margin used: {SPHERE_MARGIN:.1%})")
    print(f"  bands differing from the geodesic's: haversine alone {wrong_sphere:,}, "
          f"display_km {wrong_shown:,}")
    # microseconds per pair are milliseconds per 1,000 pairs
    print(f"  per 1,000 matched providers: haversine {hav:.2f} ms, display_km {disp:.2f} ms, "
          f"geodesic for every one {geo:.1f} ms")
    return 0 if wrong_shown == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
