"""What a run says while it works, for musicians: the planner's and the render's progress, and what a run
stopped by its visitor says. A field's help is ``tooltips``; a refusal, ``refusals``; a result, ``result_words``."""

# Think's progress, as the planner works (``generation``).
PLAN_THINKING = "Thinking: the planner works out the song's plan ({done} steps so far)…"
PLAN_CHOSEN = "Think chose {length} for the song; now it sketches the song…"
PLAN_SKETCHING = "Sketching the song{which}: {done} of {total}{chosen}"  # its melody and structure, for the music model
PLAN_SKETCHING_TAKES = " for {takes} takes"
PLAN_CHOSE = " · Think chose {length}"
# The render's steps (``generation``), and a loop's seam after them.
STEP = "Step {step}/{total}"  # a render's progress (``generation``)
LOOP_CLOSING = "Closing the loop: step {step}/{total}"  # its seam's repaint, after the song's STEP
# A run stopped (``stopping.stopped``): what was kept, what was not.
NOT_STARTED = "Stopped before it started. Nothing was saved."
STOPPED_AFTER_LAST_STEP = "Stopped after the last step, before the take was saved. Nothing was saved."
ALREADY_SAVED = "Stop came after the take was finished: it is saved, and shown here."
WRITE_IT_STOPPED = "Stopped while the planner wrote. Nothing was changed."
DESCRIBE_STOPPED = "Stopped while the planner listened. Nothing was changed."
STEMS_STOPPED = "Stopped while splitting into stems. Nothing was saved; the take itself is kept."
LYRICS_STOPPED = "Stopped. What the writer wrote so far is kept."
