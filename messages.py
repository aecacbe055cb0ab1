"""Every message a visitor reads that is not an error, in a musician's terms, by section:

- a run's progress (a model loading, the GPU queue, Think, the steps) and what a stopped run says;
- a result: its result and seed lines, a take's badges and links, a plan, a record's notes, the song map;
- the studio busy or full (admission's and the output folder's messages, a request's cost described);
- the page's header and status: the model, its weights, the device, the offload mode;
- HTTP bodies the gate and the event streams answer with;
- ZeroGPU's quota, and the duration estimate's measured figures;
- log lines about the learned beat tracker.

Error messages (``gr.Error``, ``checks.InputError``) are ``error_messages``; a field's help is ``tooltips``.
This module imports nothing, so every module may word its messages here."""

from __future__ import annotations

# ---- A run's progress and what a stopped run says ----

# Think's progress, as the planner works (``generation``).
PLAN_THINKING = "Thinking: the planner works out the song's plan ({done} steps so far)…"
PLAN_CHOSEN = "Think chose {length} for the song; now it sketches the song…"
PLAN_SKETCHING = "Sketching the song{which}: {done} of {total}{chosen}"  # its melody and structure, for the music model
PLAN_SKETCHING_TAKES = " for {takes} takes"
PLAN_CHOSE = " · Think chose {length}"
# A music request's first progress line (``generation.starting_message``), a model loaded first; the GPU queue
# waited in (``gpu``).
STARTING = "Starting…"
LOADING_MUSIC = "Loading the model… the first song takes about {seconds:.0f} s longer"
LOADING_LYRICS = "Loading the lyrics model… the first time takes about a minute longer"  # ``lyrics_page``
SPLITTING = "Splitting into stems…"  # ``handlers``, the stem model loaded
LOADING_STEMS = "Loading the stem separation model…"
SPLITTING_SEGMENT = "Splitting into stems, segment {done} of {total}"  # ``stems``
RETRYING = "Retrying with a longer GPU budget…"
IN_GPU_QUEUE = "Waiting for the GPU: {ahead} request{s} ahead…"
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
# A run stopped (``runs.stopped``): what was kept, what was not.
NOT_STARTED = "Stopped before it started. Nothing was saved."
STOPPED_AFTER_LAST_STEP = "Stopped after the last step, before the take was saved. Nothing was saved."
ALREADY_SAVED = "Stop came after the take was finished: it is saved, and shown here."
WRITE_IT_STOPPED = "Stopped while the planner wrote. Nothing was changed."
DESCRIBE_STOPPED = "Stopped while the planner listened. Nothing was changed."
STEMS_STOPPED = "Stopped while splitting into stems. Nothing was saved; the take itself is kept."
LYRICS_STOPPED = "Stopped. What the writer wrote so far is kept."
# Where a run was when its Stop was seen (``runs.Cancelled``'s message; ``gpu.worker_errors`` adds what was kept).
STOPPED_BEFORE_FIRST_STEP = "Stopped before the first step."  # ``backend``
STOPPED_AT_STEP = "Stopped at step {done} of {total}."  # ``backend``
STOPPED_THINKING = "Stopped while the planner was thinking."  # ``planner``
STOPPED_WRITING_CODES = "Stopped while the planner wrote the blueprint ({done} of {target} codes)."  # ``planner``
STOPPED_FINISHING = "Stopped while the takes were finished."  # ``runs.unless``
LYRICS_NOT_STARTED = "Stopped before the writer started."  # ``lyrics_page``


# ---- A result: its lines, a take's badges and links, a plan, a record's notes ----

# The result line before any take (``widgets``), and a plan's line (``results``, ``handlers``).
RESULT_EMPTY = "Nothing here yet. Your takes appear here, each with the seed that makes it again."
PLANNED = "Planned in {seconds:.1f} s: {summary}."
PLAN_SKIPPED = "Think was skipped ({reason}); the song was made from your caption and lyrics alone."
# Why Think was skipped (``PLAN_SKIPPED``'s reason: ``generation``, ``planner.plan_request``).
SKIP_NO_DETOKENIZER = "this music model has no audio detokenizer, so it cannot read a blueprint"
SKIP_NOT_LOADED = "the planner could not be loaded ({error})"
SKIP_FAILED = "the planner stopped with an error ({kind})"
SKIP_NO_CODES = "the planner wrote no audio codes"
SKIP_LENGTH = "; without it the song is {seconds} s long"  # after the reason, where nothing chose the length
# A result's time (``results.time_text``): a loop's bars, else the metre: "In" only where every take's bars were
# heard, else as it was asked or planned (a take of noise is in no metre); each take's tempo follows.
LOOP_SAID = "Loop: {bars} bars at {bpm} BPM, {metre} ({seconds:.1f} s)"
LOOP_BY_THINK = ", as Think planned it"
TAKE_METRE = "In {metre}"
METRE_ASKED = "Asked for {metre}"
METRE_PLANNED = "Think planned {metre}"
# What Describe heard (``describe.fill``): its head, a value the planner heard as measured, one it did not hear.
HEARD_HEAD = "**What the planner heard** ({codes} codes, {seconds:.1f} s):"
HEARD_AS_MEASURED = "{name}: {value} (the planner hears it as measured)"
HEARD_NONE = "{what}: the planner heard none"
LANGUAGE_KEPT = "Language: kept yours ({language}); the planner heard {heard}"
LANGUAGE_LEFT = "Language: the planner heard {heard}, left as it was"
# *Write it*'s note (``songwriter.note``) where the planner wrote no lyrics.
WROTE_NO_LYRICS = "The planner wrote no words this time: try another seed, or write them yourself."
# Text a model wrote past what the music model reads (``text_limits.fit``: Think's, *Write it*'s).
CAPTION_FIT = (
    " Think's caption ran to {n} tokens, past the {most} the model reads of one: it was cut at its last {kept}."
)
CAPTION_YOURS = " Think's caption ran to {n} tokens, past the {most} the model reads of one: your own caption was used."
WRITTEN_FIT = "The planner's {what} ran to {written_tokens} tokens, past the {most} the music model reads: cut to fit."
# A result's seed line (``results.seeds_text``): each take's seed, a variation's part of it, the run's time and
# device; the length Think chose, after its plan's line.
SEEDS = "Seeds — {seeds} · made in {seconds:.1f} s on {device}"
# The adapters a take was made with (``results.adapters_text``): each by its file or preset, kind and strength.
ADAPTERS_USED = "Adapters — {adapters}"
ADAPTER_USED = "{name} ({kind}) at {scale:g}"
ADAPTER_KINDS = {"lora": "LoRA", "lokr": "LoKr"}
# An adapter whose tensors land on only some of the model's layers it names (``lora``).
ADAPTER_PARTIAL = ", changes {changed} of {named} layers"
SEED_VARIED = " (take {take} varied {amount:g}, new noise {seed})"
THINK_CHOSE = " Think chose a length of {clock} ({seconds} s)."
# The seed line of a repaint of a take asked with the take's own seed (``preparing.from_take_latents``).
SEED_REDRAWN = " (not {asked}: that is the song's own seed, and a repaint of a take draws new noise, as ACE-Step does)"
# An upload as the studio hears it (``analysis``); its header's facts and a failed measure (``form_fields``).
SOURCE_SAID = "Source: {minutes}:{seconds:04.1f} long · {rate} Hz · {channels} channel(s)"
NOT_MEASURED = "{line} · (tempo and key could not be measured)"
# An upload counted two ways (a half-time feel): the BPM field takes the first; the musician may type the other.
FELT_AS = "{tempo}, felt as {felt:g}"
NO_STEADY_BEAT = "no steady beat found, so BPM and time signature stay on auto"
# The upload's map in one line, and how sure it is (``edit_bars.map_line``): steady, wandering, or no beat heard.
MAP_HEARD = "{bars} bars: ≈ {bpm:g} BPM in {metre}, {steady}"
MAP_FELT = "{bars} bars: ≈ {bpm:g} BPM (felt as {felt:g}) in {metre}, {steady}"
MAP_FROM_BAR_ONE = ", counted from Bar 1 at {first:g} s"
MAP_UNSURE = "no steady beat heard: set Bar 1 on the waveform and type the BPM"
# A take's voice lent to Generate (``voice_row``).
VOICE_USED = "This take's voice is now Generate's timbre reference: write a new caption and lyrics, and make a song."
# A take kept as played by *Lock to the grid* (``grid_lock``), and its links (``player``).
LOCK_NO_BPM = "kept as played: no tempo was asked or planned"
LOCK_NO_BEAT = "kept as played: no steady beat was heard in it"
LOCK_BUSY = "kept as played: the studio was measuring as many songs as it may"
LOCK_TOO_FAR = "kept as played: a bar would be stretched {pct:.1f} % (at most {most:g} %)"
UNLOCKED_LINK = "Download as played"
PART_LINK = "Download the part alone"
# A take's tempo as played, beside its label (``song_map.Tempo.said``; ``player``).
TEMPO_IN_TIME = "In time: {bpm:g} BPM, {steady}"
TEMPO_OFF = "Played at {bpm:g} BPM, {pct} % {way}, {steady}"
TEMPO_HEARD = "Plays at {bpm:g} BPM, {steady}"
# A song that can be counted two ways (a half-time feel): both readings, the first the one its bars follow.
TEMPO_FELT = "Plays at {bpm:g} BPM, felt as {felt:g}, {steady}"
TEMPO_SLOW, TEMPO_FAST = "slow", "fast"
TEMPO_HELP = "The tempo this take was played at, measured from its beats, against the BPM asked; steady: its bars keep one length."
TEMPO_STEADY = "steady"
TEMPO_WANDERS = "its bars wander up to {pct:g} %"
LYRIC_BADGE = "· words sung clearly: {score} of 1"  # beside "Take 1" (``player``); LYRIC_SCORE on hover
LYRIC_SCORE = (
    "Lyric alignment, 0 to 1 (ACE-Step's own score): how clearly and in order this take sings its words. "
    "Pick the take with the higher number when the words matter."
)
# A take of My takes whose files are gone (``my_takes``), and a variation's settings brought back (``results``).
MY_TAKE_CLEANED = (
    "The studio no longer keeps this take's files (it keeps them {hours:g} h). Use these settings brings back its "
    "settings and seed (for a variation, those of the take it varied)."
)
SETTINGS_OF_A_VARIATION = (
    "This take is a variation (of take {take}, amount {amount}, new noise seed {seed}); Generate has no field for "
    "its noise, so these are the settings of the take it varied. To make this variation again, vary that take "
    "with the same amount and seed, or send this record to /variations at amount 0."
)
# A take's file's comment tag (``takes``).
TAKE_COMMENT = "{mode}, take {take} of {of}, seed {seed}; made with {studio}"
# A loop's record where several cycles were made as one song (``loops.record``): how, and which cycle was kept.
LOOP_MADE = (
    "{cycles} cycles of the loop made as one {seconds:.1f} s song (the shortest song is {shortest:g} s); the middle "
    "cycle kept ({which}) and its wrap repainted with the loop's cycles either side"
)
LOOP_CYCLE = "cycle {n} of {cycles}"
LOOP_EARLIER = ", the earlier of the two"
# A take's finish as its record says it (``mastering``; an Edit's or Extend's kept part: ``untouched``).
FINISH_QUIET = "left as rendered: quieter than {lufs:g} LUFS (silence or nearly)"
FINISH_MOST_BOOST = "raised by at most {db:g} dB: a take this quiet would bring up its noise"
FINISH_DENSE = (
    "reached {lufs:.1f} LUFS{unlimited}: its peaks are as dense as the rest of it, so more gain would only be "
    "taken back by the limiter"
)
FINISH_UNLIMITED = " with no limiting"
FINISH_TOO_DENSE = (
    "reached {lufs:.1f} LUFS: its peaks are so dense that louder would take more than {db:g} dB of extra limiting"
)
FINISH_MATCHED = "matched to the source outside the new part"
FINISH_OFF = "off: as rendered"
FINISH_CYCLE = "measured and limited across the wrap ({seconds:.2f} s of the loop either side)"
KEPT_MP3 = "the song's own part encoded again as MP3 (at 48 kHz; the song was {rate}): exact only in WAV or FLAC"
KEPT_SAMPLES = "outside the new part, the song's own samples at its own {rate}, {how}"
KEPT_EXACT = "bit for bit"
KEPT_ROUNDED = "rounded to {subtype} ({stored} song)"
# What a repaint of a take started from, as its record says (``take_latents``): the take's own latents, else why
# the song went through the VAE. A changed take gets an upload's message (no take's existence is told).
LATENTS_OF_TAKE = "the take's own latents ({name})"
# The log's line for it, one a run: "edit: the song's latents are the take's own latents (…)".
SONG_LATENTS = "{mode}: the song's latents are {how}"
LATENTS_UPLOAD = "encoded by the VAE: the studio keeps no latents of this very file"
LATENTS_NONE_KEPT = "encoded by the VAE: a loop, or a take locked to the grid, keeps no latents"
LATENTS_GONE = "encoded by the VAE: its take's latents are gone"
LATENTS_MISFIT = "encoded by the VAE: its take's latents {why}"
LATENTS_UNREADABLE = "encoded by the VAE: its take's latents could not be read ({kind})"
LATENTS_MOVED = "encoded by the VAE: an intro before the song moves it off its take's latent frames"
LATENTS_NOT_THIS_MODELS = "are not this model's ({have} channels; it reads {width})"  # a misfit's why
LATENTS_TOO_SHORT = "are not as long as the song ({have} frames; it takes {frames})"
LATENTS_NOT_A_TAKES = "are not a take's"


# ---- The studio busy or full: admission, the output folder, a request's cost ----

BUSY = (
    "The studio is busy — {waiting} requests (songs and lyrics) are already waiting for the GPU. Nothing was lost: "
    "try again in a minute."
)
PER_VISITOR = (
    "You already have {held} requests (songs or lyrics) waiting or being made, the most one visitor may have at "
    "once. Wait for one to finish, or press Stop on it, then try again."
)
UPLOADS_PER_VISITOR = (
    "You already have {held} uploaded songs being read. Wait until they are read, then upload this one again."
)
# A crowd's share (``admission.CROWDS``): a subscriber's or site's IPv6 network, the agents without an address.
NETWORK_HELD = (
    "Devices on your {whose} already have {held} requests like this one waiting or being made, the most one "
    "such network may have at once, however many devices are on it. Wait for one to finish, then try again."
)
NAMELESS_AGENTS_HELD = (
    "Agents calling without a public address already have {held} requests like this one waiting or being made, "
    "the most they may have together: the studio cannot tell them apart by the credentials they send. Wait for "
    "one to finish, or call the studio from a public address, then try again."
)
CHEAP_BUSY = "The studio has too many requests like this one under way. Nothing was lost: try again in a moment."
OUTPUT_FULL = (
    "The studio's folder for finished songs is full of songs other visitors are still fetching, so this one "
    "would have nowhere to go. Nothing was made: try again in a few minutes, or ask for fewer or shorter takes."
)
# The toasts' titles of the quota (``quota.refusal``, ``gpu``'s call past its GPU time) and of a full output folder.
OUT_OF_GPU_TIME_TITLE = "Out of GPU time"
TOO_LONG_TITLE = "Too long for one press"
DISK_FULL_TITLE = "No room for new songs"
# A music request described (``budget``), where its cost or its disk space is refused: what it asks, how long.
ASKED_TAKE = "A take of {length}{think}"
ASKED_TAKES = "{n} takes of {length}{think}"
ASKED_WITH_THINK = " with Think"
ASKED_CHOOSING_ONE = "{n} take with Think, even of the shortest length"
ASKED_CHOOSING = "{n} takes with Think, even of the shortest length"
ASKED_OF_MODE = "A {length} {mode}"
# A length as a musician says it (``budget.span``): "45 s", "10 minutes", "4 min 30 s".
SPAN_SECONDS = "{seconds} s"
SPAN_MINUTE = "{minutes} minute"
SPAN_MINUTES = "{minutes} minutes"
SPAN_BOTH = "{minutes} min {seconds} s"
# What of a request is over its budget (``budget.over``), and the ways that would fit (``budget.ways_that_fit``):
# after the first, each joined by ``FITS_OR`` where an error message lists them, the last by ``WAYS_OR`` in ``quota``'s.
OVER_GPU = "about {gpu:.0f} s of GPU time, where one request may take {most:.0f} s"
OVER_AUDIO = "{held} of audio at once, where one request may make {most}"
FITS_FEWER_TAKE = "at most {n} take of that length"
FITS_FEWER_TAKES = "at most {n} takes of that length"
FITS_SHORTER_TAKE = "a take up to {length}"
FITS_SHORTER_TAKES = "takes up to {length}"
FITS_LESS_ADDED = "up to {length} added"
FITS_FEWER_STEPS = "up to {steps} steps"
FITS_WITHOUT_THINK = "the same without Think"
FITS_SHORTER_MORPH = "morph a shorter take"
FITS_NONE = "ask for fewer takes or a shorter song"
FITS_OR = ", or {way}"
WAYS_OR = "{some} or {last}"
# Why Think was skipped just before a ZeroGPU call (``budget.makes_way``): ``messages.PLAN_SKIPPED``'s reason.
NO_PLAN_FITS = "no song planned by Think fits the {most:.0f} s one request may take here"
PLAN_TOO_LONG = (
    "planning and making this song would take longer than the {most:.0f} s one request may take here; fewer takes "
    "or a shorter song leave room for it"
)
OUTPUT_TOO_SMALL = (
    "{asked} would write about {mb:.0f} MB, more than the studio's folder for finished songs holds ({quota:.0f} MB). "
    "Ask for fewer or shorter takes, or MP3 instead of WAV or FLAC."
)
UPLOADS_BUSY = (
    "The studio is reading many uploaded songs right now and has no room for this one yet. Nothing was lost: "
    "upload it again in a moment."
)
UPLOADS_FULL = (
    "The studio's space for uploads is full right now. Nothing was lost: try again in a few minutes, or upload a "
    "shorter or smaller file."
)

# ---- The page's header and status: the model, its weights, the device ----

# Text Gradio's page reads by key and this Gradio's English lacks (without it, its screen-reader line says
# "common.complete" as each event ends). Handed to the page as its translations (``app``).
PAGE_KEYS = {"common": {"complete": "Done"}}
HEADER = "# ACE Music Studio\nMake songs from words with {model}. {tagline}"  # the page's head (``status``)
MODEL_FROM_FOLDER = "a local model (**{folder}**)"
STATUS_CHECKING = "Checking the model…"
MODEL_MISSING = (
    "The music model could not be loaded: {error}\n\n"
    "What to do: point ACE_STUDIO_MODEL at a folder that holds the model "
    "(e.g. ACE_STUDIO_MODEL=/path/to/acestep-v15-xl-sft python app.py), or try the page on tiny random "
    "models: run python tools/random_models.py DIR, then the command it prints."
)
# A model whose weights are not here: said in the header from the start, and as a request's error.
# What ``WEIGHTS_MISSING`` names (``models.download``'s ``what``; ``status``, ``base_model``).
MUSIC_MODEL = "the music model"
XL_BASE_MODEL = "the XL base model"
WEIGHTS_MISSING = (
    "The weights of {what} ({repo}) are not on this machine and {why}. What to do: {fix} so the first request "
    "downloads them, or point {env} at a folder that holds the model (e.g. {env}=/path/to/model python app.py), or "
    "try the page on tiny random models: run python tools/random_models.py DIR, then the command it prints."
)
# Why the Hub cannot give weights now, and what to do about it (``models.hub_closed``).
HUB_OFFLINE = ("HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE on a machine with internet")
HUB_UNREACHABLE = ("the Hugging Face Hub cannot be reached from here", "connect this machine to the internet")
# How those messages start (a failed build's message that already says what to do).
WEIGHTS_LEADS = ("The weights of ", "The model folder ")
WEIGHTS_NO_FOLDER = (
    "The model folder {folder} does not exist on this machine. What to do: point ACE_STUDIO_MODEL at a folder that "
    "holds the model, or try the page on tiny random models: run python tools/random_models.py DIR, then the command it "
    "prints."
)
WRITER_NO_FOLDER = (
    "The lyrics writer's folder {folder} does not exist on this machine. What to do: point {env} at a folder "
    "that holds it, or try the page on tiny random models: run python tools/random_models.py DIR, then the "
    "command it prints."
)
WEIGHTS_TO_DOWNLOAD = (
    "{repo} is not on this machine yet: the first song downloads it from the Hugging Face Hub (many GB; it needs "
    "internet) and takes that much longer. Without internet, point ACE_STUDIO_MODEL at a folder that holds it."
)
# What the music runs on (``status.device_label``): ZeroGPU, else the device by its torch name.
ON_ZERO_GPU = "ZeroGPU"
DEVICES = {"cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)", "cpu": "CPU"}
STATUS_COLD = "{label} runs on **{device}**. It loads on first use: the first song takes about {usual:.0f} s longer."
STATUS_LOADING = "Loading {label} on **{device}**… {elapsed:.0f} s so far (usually about {usual:.0f} s)."
STATUS_READY = "Ready: {label} on **{device}** (loaded in {seconds:.1f} s)."
STATUS_WARMING = (
    " The lyrics writer is still loading ({elapsed:.0f} s so far); on ZeroGPU every request waits for it to finish."
)
STATUS_WARM_FAILED = " ⚠️ The {what} could not be loaded: {error}"
LYRICS_TOO_BIG = (
    "{source} needs {gib:.1f} GiB of GPU memory and this GPU has less in all. Point ACE_STUDIO_LYRICS_MODEL at "
    "a smaller model, e.g. Qwen/Qwen2.5-3B-Instruct."
)
# After STATUS_READY on an NVIDIA GPU: the offload mode (ACE_STUDIO_OFFLOAD) the studio runs.
OFFLOAD = {
    "none": " Offload: none, the model stays on the GPU.",
    "model": (
        " Offload: model. This GPU is too small to hold the whole model, so each part visits it only while it "
        "works: a few seconds more per song."
    ),
    "sequential": (
        " Offload: sequential. This GPU is very small for the model, so it streams in layer by layer: songs take "
        "several times longer."
    ),
}

# ---- HTTP bodies: the event streams, the gate, the instant events ----

# A client's event stream came back after its grace (``streams``), or for a session the studio never had.
STREAM_GONE = (
    "The connection to the studio was lost for too long, so this request was stopped and nothing was saved. "
    "Reload the page and try again."
)
UPLOADS_AT_ONCE = (
    "Your connection is already sending the studio several uploads at once. Wait until one has arrived, then "
    "upload again."
)
# A raw HTTP answer's body, where the gate (``asgi_gate``) or the instant events' limit (``instant``) refuses a request.
UPLOAD_TOO_LARGE = "This file is larger than the studio accepts ({mb} MB at most). Please upload a smaller one."
REQUEST_TOO_BIG = "This request is larger than the studio accepts."
REQUEST_TOO_DEEP = "This request nests its data deeper than the studio accepts."
REQUEST_TOO_SLOW = (
    "This request arrived too slowly, so the studio stopped waiting for it. Check your connection and try again."
)
BODIES_BUSY = "The studio is receiving many large requests at once right now. Try again in a moment."
UPLOAD_PAST_LIMIT = "File size exceeded maximum allowed size of the studio's room for it."  # Gradio's own, ours added
UPLOAD_CUT_OFF = "The upload was cut off."
NO_SUCH_TAKE = "There is no such take (takes are kept for a limited time)."
NO_DEEP_LINKS = "The studio has no deep links."

# ---- ZeroGPU's quota and the duration estimate ----

# On a ZeroGPU Space (``quota``): the line beside each GPU button, and ZeroGPU's refusals as messages.
RESERVES = "On this Space a press reserves about {time} of your daily ZeroGPU time; you are charged what it uses."
RESERVES_NOT_YET = "On this Space a press reserves some of your daily ZeroGPU time: how much shows once a song is here."
RESERVES_LATER = "On this Space a press reserves some of your daily ZeroGPU time: how much shows once it can be sent."
# Where a request would reserve more than a visitor who is not signed in has in a day (ZeroGPU's count).
RESERVES_OVER_DAY = " That is more than the {day} a day a visitor who is not signed in gets."
RESERVES_FITS_DAY = " Within that: {ways}."
# The duration estimate's measured figures ("Pace on this machine", ``widgets.duration_text``), under each
# result's details.
DURATION_LINE = "Pace on this machine, {gpu}: {figures}; from {calls}."
# Before anything is measured, by whether the studio runs on ZeroGPU (where a request declares its GPU time).
DURATION_NOT_YET = {
    True: "Pace on this machine: not measured yet. Each press declares the studio's first figures (one H100, "
    "without captured steps) until three of its kind have run here.",
    False: "Pace on this machine: not measured yet. Until three requests of a kind have run here, the studio "
    "estimates their time from its first figures.",
}
DURATION_PRIOR_ONLY = {
    True: "Pace on this machine: not learned here (ACE_STUDIO_DURATION_ESTIMATE=prior); every press declares the first figures.",
    False: "Pace on this machine: not learned here (ACE_STUDIO_DURATION_ESTIMATE=prior); the studio estimates every request's "
    "time from its first figures.",
}
DURATION_FIGURE = {
    "planner_ms_a_code": "the planner {value:.1f} ms a code",
    "dit_ms_a_step_60s": "the music model {value:.0f} ms a step of a 60 s take",
    "lyrics_tokens_a_second": "the lyrics writer {value:.0f} tokens a second",
}
DURATION_UNMEASURED = {
    "planner_ms_a_code": "the planner not measured yet",
    "dit_ms_a_step_60s": "the music model at 60 s not measured yet",
    "lyrics_tokens_a_second": "the lyrics writer not measured yet",
}
QUOTA_EXCEEDED = (
    "This press would reserve {asked} of GPU time and your daily ZeroGPU quota has {left} left, so ZeroGPU did not "
    "start it. {when} Signed in to Hugging Face you get more time a day (with PRO, more still). {fit} Nothing was saved."
)
QUOTA_BACK_IN = "Your quota comes back in {wait}."
QUOTA_BACK_LATER = "Try again later."
QUOTA_FITS = "What fits now: {ways}."
QUOTA_NOTHING_FITS = "Nothing fits until then: every press here reserves at least {least}."
QUOTA_LESS = "a shorter or smaller request"
QUOTA_SPACE = (
    "The GPU time ZeroGPU gives this Space has run out for now, so your press did not start. {when} Signed in to "
    "Hugging Face you have a daily quota of your own. Nothing was saved."
)
QUOTA_RUNS = (
    "You have started as many GPU runs as ZeroGPU allows your account for now, so this press did not start. {when} "
    "Signed in to Hugging Face (or with PRO) you may start more. Nothing was saved."
)
QUOTA_TOO_LONG = (
    "This press would reserve {asked} of GPU time, more than ZeroGPU lets your account reserve in one press, so it "
    "did not start. Signed in to Hugging Face (or with PRO) one press may reserve more; the largest request here "
    "reserves {largest}. What reserves less: {ways}. Nothing was saved."
)
QUOTA_THIS_MUCH = "this much"

# ---- Log lines ----

# Why an upload's map is the studio's own and not the learned beat tracker's (``beat_network``): said once in the log.
BEATS_NOT_SET_UP = (
    "no learned beat tracker is set up (beat_network.REPO): uploads are mapped by the studio's own beat tracker"
)
BEATS_NOT_CACHED = (
    "{file} of {repo} is not in this machine's Hugging Face cache (the Space's build preloads it): uploads are "
    "mapped by the studio's own beat tracker"
)
BEATS_NOT_PINNED = (
    "{file} of {repo} in the Hugging Face cache is not the file the studio pins (its SHA-256 differs), so it is "
    "not loaded: uploads are mapped by the studio's own beat tracker"
)
BEATS_UNREADABLE = (
    "{file} could not be read as a beat tracker ({why}): uploads are mapped by the studio's own beat tracker"
)
BEATS_FAILED = "The learned beat tracker failed on {name} ({why}): its bars are mapped by the studio's own beat tracker"
