"""The `prune` kind: remove what the service's Docker host no longer needs (dangling images, containers stopped for
some days, named volumes nothing uses), reporting the bytes freed; there is no undo.

Not responsible for reading or removing (`bot.executors`, capability `Prunes`). Knows the catalog only to keep every
container one of its services names (opsbot may start it again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from bot.executors.base import Effect, PruneRules, Prunes, RecordingProgress
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    probe,
    register,
)

if TYPE_CHECKING:
    from bot.catalog import Catalog

VolumeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=255)]


class PruneStep(_ServiceStep):
    """Remove what the service's Docker host no longer needs: dangling images, containers stopped for some days,
    volumes named here that nothing uses. The plan lists what would go and the bytes it would free; what is found
    when the step runs is what goes, each removed without force, so nothing running, tagged or in use goes. Docker
    targets only. No undo; a failure stops the run."""

    kind: Literal["prune"]
    images: Literal["dangling", "none"] = Field(
        default="dangling", description="`dangling`: remove untagged images that no container uses (what `docker "
                                        "image prune` removes); `none`: leave images alone. Tagged images are never "
                                        "removed")
    containers_older_than_days: float | None = Field(
        default=None, gt=0, le=3650, examples=[7, 0.5],
        description="remove containers stopped (or created and never started) at least this many days ago "
                    "(fractions allowed), on the whole host; never a running one, one that a service of this catalog "
                    "selects (opsbot may start it again, as after a scale to 0) or one set aside by an unfinished "
                    "deploy. None: no containers")
    volumes: list[VolumeName] = Field(
        default_factory=list, max_length=100, examples=[["shop_cache", "shop_tmp"]],
        description="volumes that may go, by name, each only when no container that stays uses it; volumes not "
                    "named here are never removed")

    @model_validator(mode="after")
    def _something(self) -> PruneStep:
        if self.images == "none" and self.containers_older_than_days is None and not self.volumes:
            raise ValueError("this prune removes nothing: give `images: dangling`, `containers_older_than_days` or "
                             "`volumes`")
        return self


def rules(catalog: Catalog, args: Mapping[str, Any]) -> PruneRules:
    days = args.get("containers_older_than_days")
    return PruneRules(dangling_images=args["images"] == "dangling",
                      stopped_for=None if days is None else timedelta(days=float(days)),
                      volumes=frozenset(args.get("volumes") or ()), owner=owner_in(catalog))


def owner_in(catalog: Catalog) -> Callable[[str, Mapping[str, str]], str | None]:
    """Which service of the catalog a container (name, labels) is one of, by its Docker target."""
    selectors = [(name, service.target) for name, service in catalog.services.items()
                 if service.target is not None and service.target.type == "docker"]

    def owner(container: str, labels: Mapping[str, str]) -> str | None:
        for service, target in selectors:
            if target.container == container or (
                    target.labels and all(labels.get(key) == value for key, value in target.labels.items())):
                return service
        return None

    return owner


def what(args: Mapping[str, Any]) -> str:
    parts = ["dangling images"] if args["images"] == "dangling" else []
    if args.get("containers_older_than_days") is not None:
        days = float(args["containers_older_than_days"])
        parts.append(f"containers stopped over {days:g} day{'' if days == 1 else 's'}")
    if args.get("volumes"):
        parts.append(f"unused volumes {', '.join(args['volumes'])}")
    return ", ".join(parts)


async def _preview(deps: StepDeps, service: str, args: Mapping[str, Any]) -> str:
    async with targets.capable(deps, service, Prunes) as found:
        workload: Prunes = found
        return await workload.prune_preview(rules(deps.catalog, args))


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: _preview(deps, service or "", args), "{}")
    return f"Prune the Docker host of {service}{targets.where(deps, service)}: {what(args)}", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Prunes) as found:
        workload: Prunes = found
        return await workload.prune(rules(deps.catalog, step.args), RecordingProgress())


# No undo: what is removed is gone. A failure stops the run rather than rolling back the steps before it, which a
# clean-up failing does not call into question.
KIND = register(StepKind("prune", PruneStep,
                         Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN, needs="target", on_failure="stop",
                                capability=(Prunes,)),
                         _describe, _perform))
