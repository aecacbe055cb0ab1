"""What a run says while it works, for musicians: a model loading, the GPU waited for, the planner's, the
render's, Describe's, *Write it*'s and the stems' progress, and what a run stopped by its visitor says (where
it was when the Stop was seen). A field's help is ``tooltips``; a refusal, ``refusals``; a result, ``result_words``."""

# Think's progress, as the planner works (``generation``).
PLAN_THINKING = "Thinking: the planner works out the song's plan ({done} steps so far)…"
PLAN_CHOSEN = "Think chose {length} for the song; now it sketches the song…"
PLAN_SKETCHING = "Sketching the song{which}: {done} of {total}{chosen}"  # its melody and structure, for the music model
PLAN_SKETCHING_TAKES = " for {takes} takes"
PLAN_CHOSE = " · Think chose {length}"
# A press's first line (``generation.starting_words``), a model loaded first; a GPU waited for (``gpu``).
STARTING = "Starting…"
LOADING_MUSIC = "Loading the model… the first song takes about {seconds:.0f} s longer"
LOADING_LYRICS = "Loading the lyrics model… the first time takes about a minute longer"  # ``lyrics_page``
SPLITTING = "Splitting into stems…"  # ``handlers``, the stem model loaded
LOADING_STEMS = "Loading the stem separation model…"
SPLITTING_SEGMENT = "Splitting into stems, segment {done} of {total}"  # ``stems``
RETRYING = "Retrying with a longer GPU budget…"
IN_LINE = "Waiting for the GPU: {ahead} request{s} ahead…"
LOADING_MODELS = "The studio is still loading its models ({seconds:.0f} s so far)…"
LOADING_LIBRARIES = "The studio is still loading its libraries ({seconds:.0f} s so far)…"
# Describe's listening (``describe.reporter``) and *Write it*'s writing (``songwriter.reporter``).
DESCRIBE_LISTENING = "Listening to the song…"
DESCRIBE_NOTES = "The planner describes the song ({done} tokens)…"
DESCRIBE_LYRICS = "The planner writes down the lyrics ({done} tokens)…"
WRITE_IT_STAGES = {"notes": "The planner sketches the song", "lyrics": "The planner writes the words"}
WRITE_IT_STAGE = "{stage} ({done} tokens)…"
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
# Where a run was when its Stop was seen (``runs.Cancelled``'s words; ``gpu.worker_errors`` adds what was kept).
STOPPED_BEFORE_FIRST_STEP = "Stopped before the first step."  # ``backend``
STOPPED_AT_STEP = "Stopped at step {done} of {total}."  # ``backend``
STOPPED_THINKING = "Stopped while the planner was thinking."  # ``planner``
STOPPED_WRITING_CODES = "Stopped while the planner wrote the blueprint ({done} of {target} codes)."  # ``planner``
STOPPED_FINISHING = "Stopped while the takes were finished."  # ``runs.unless``
LYRICS_NOT_STARTED = "Stopped before the writer started."  # ``lyrics_page``
