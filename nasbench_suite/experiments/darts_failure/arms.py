"""The names of the darts-failure experiment's arms, shared by its report (the tables'
rows) and its figures (which fix each arm's look by its place in :func:`arm_order`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasbench_suite.experiments.darts_failure.config import Arm


def arm_name(method: str, space: str, order: int, remedy: str = "") -> str:
    name = {"darts": f"DARTS ({'2nd' if order == 2 else '1st'} order)", "gold": "GOLD-NAS"}
    base = name.get(method, method)
    if remedy == "darts-es":
        base = f"DARTS-ES ({'2nd' if order == 2 else '1st'} order)"
    elif remedy.startswith("pdarts-m"):
        base = f"{base} + P-DARTS skip limit (M={remedy.removeprefix('pdarts-m')})"
    return f"{base}, {space}"


def arm_title(arm: Arm, order: int, remedy: str = "") -> str:
    """An arm's report name: the method, order and space (:func:`arm_name`) and what else
    makes the arm (its qualifier: the op set, the skip, the alpha learning rate)."""
    base = arm_name(arm.method, arm.space, order, remedy)
    return f"{base}, {arm.qualifier}" if arm.qualifier else base


def arm_order() -> list[str]:
    """Every arm the experiment can have, in a fixed order (1st-order DARTS, GOLD-NAS and
    the 1st-order remedies first): figures give an arm its look by this order, not by which
    arms one report holds."""
    first = [("darts", "restricted", 1, ""), ("darts", "relaxed", 1, ""),
             ("gold", "relaxed", 1, ""), ("darts", "restricted", 1, "darts-es"),
             ("darts", "relaxed", 1, "darts-es"), ("darts", "restricted", 1, "pdarts-m2"),
             ("darts", "relaxed", 1, "pdarts-m2")]
    # then the arms that split the confounds (config.ARM_TABLE's qualified arms and the
    # second order, issue 27) with their remedies, within the palette's 24 colours so that
    # no two arms of that experiment share one; then every other combination
    from nasbench_suite.experiments.darts_failure.config import ARM_TABLE

    split = [arm_title(a, 1, remedy) for a in ARM_TABLE if a.qualifier
             for remedy in ("", "darts-es", "pdarts-m2")]
    split += [arm_name("darts", "relaxed", 2, remedy) for remedy in ("", "darts-es")]
    rest = [arm_name("darts", space, order, remedy) for order in (1, 2)
            for remedy in ("", "darts-es", "pdarts-m2")
            for space in ("restricted", "relaxed", "nb201")]
    rest += [arm_title(a, 2, remedy) for a in ARM_TABLE if a.qualifier
             for remedy in ("", "darts-es", "pdarts-m2")]
    return list(dict.fromkeys([*(arm_name(*arm) for arm in first), *split, *rest]))
