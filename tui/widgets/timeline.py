"""The three days, their phases, gates and steps, with status glyphs and time slots."""

from __future__ import annotations

from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from engine.core.views import NodeRef, RunSnapshot
from engine.runbook.model import Runbook
from tui.format import GATE_GLYPH, STATUS_GLYPH, fit_middle, hhmm

TreeRef = tuple[str, str]  # ("step" | "gate" | "phase" | "day", id)
# columns around an id: tree guides, glyph, slot time (steps) or "GATE" (gates), scrollbar
STEP_LABEL_OVERHEAD = 13
GATE_LABEL_OVERHEAD = 10


class Timeline(Tree[TreeRef]):
    """Labels are updated in place so the operator's cursor never jumps."""

    def __init__(self, runbook: Runbook, **kwargs) -> None:
        super().__init__(runbook.runbook.title, data=("run", runbook.runbook.id), **kwargs)
        self.runbook = runbook
        self._refs: dict[TreeRef, TreeNode[TreeRef]] = {}
        self._add_runbook_nodes()
        self.show_root = False
        self.guide_depth = 2
        self.center_scroll = True  # what is done stays in view above what runs
        self.show_actual = False

    def _add_runbook_nodes(self) -> None:
        rb = self.runbook
        for day in rb.days:
            day_node = self.root.add(day.title, data=("day", day.id), expand=True)
            self._refs[("day", day.id)] = day_node
            for phase in (p for p in rb.phases if p.day == day.id):
                for gate in (g for g in rb.gates if g.before_phase == phase.id):
                    self._leaf(day_node, ("gate", gate.id))
                phase_node = day_node.add(phase.title, data=("phase", phase.id), expand=True)
                self._refs[("phase", phase.id)] = phase_node
                for step in (s for s in rb.steps if s.phase == phase.id):
                    self._leaf(phase_node, ("step", step.id))
                for gate in (g for g in rb.gates if g.after_phase == phase.id):
                    self._leaf(day_node, ("gate", gate.id))

    def _leaf(self, parent: TreeNode[TreeRef], ref: TreeRef) -> None:
        self._refs[ref] = parent.add_leaf(ref[1], data=ref)

    def refresh_from(self, snapshot: RunSnapshot) -> None:
        self.show_actual = self.size.width >= 46
        steps = {s.id: s for s in snapshot.steps}
        gates = {g.id: g for g in snapshot.gates}
        for ref, node in self._refs.items():
            kind, node_id = ref
            if kind == "step":
                view = steps[node_id]
                shown = fit_middle(node_id, self.size.width - STEP_LABEL_OVERHEAD)
                label = f"{STATUS_GLYPH[view.status]} {view.slot_start} {shown}"
                if view.started_at and self.show_actual:  # planned vs actual, when it fits
                    end = hhmm(view.finished_at) if view.finished_at else "…"
                    if view.status == "interrupted":
                        end = "‖"
                    label += f"  ({hhmm(view.started_at)}-{end})"
            elif kind == "gate":
                here = snapshot.waiting == NodeRef.gate(node_id)
                shown = fit_middle(node_id, self.size.width - GATE_LABEL_OVERHEAD)
                label = f"{'⏸' if here else GATE_GLYPH[gates[node_id].decision]} GATE {shown}"
            else:
                continue
            if str(node.label) != label:
                node.set_label(label)

    def select_ref(self, ref: TreeRef) -> None:
        node = self._refs.get(ref)
        if node is not None:
            self.move_cursor(node, animate=False)
