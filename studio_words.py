"""The studio's own state in words, for musicians: busy and full, the model and its weights in the header
and status line, a lost connection, a press's ZeroGPU time (the quota) and the pace on this machine, a raw
HTTP answer's body (``asgi_gate``, ``instant``) and the toasts' titles of the quota and the output folder.
A field's help is ``tooltips``; a request's refusals, ``refusals``; an agent's words, ``agent_words``."""

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
# The toasts' titles of the quota (``quota.in_words``, ``gpu``'s call past its GPU time) and of the output folder's room.
OUT_OF_GPU_TIME_TITLE = "Out of GPU time"
TOO_LONG_TITLE = "Too long for one press"
NO_ROOM_TITLE = "No room for new songs"
# A music request in words (``budget``), where its cost or its room is refused: what it asks, how long.
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
# after the first, each joined by ``FITS_OR`` where a refusal lists them, the last by ``WAYS_OR`` in ``quota``'s.
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
# Why Think was skipped just before a ZeroGPU call (``budget.makes_way``): ``result_words.PLAN_SKIPPED``'s reason.
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
# Words Gradio's page reads by key and this Gradio's English lacks: its screen-reader line said
# "common.complete" as each event ended (issue 79). Handed to the page as its translations (``app``).
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
# A model whose weights are not here: said in the header from the start, and as the error of a press.
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
# How those words start (a failed build's words that already say what to do).
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

# A client's event stream came back after its grace (``streams``), or for a session the studio never had.
STREAM_GONE = (
    "The connection to the studio was lost for too long, so this request was stopped and nothing was saved. "
    "Reload the page and try again."
)
UPLOADS_AT_ONCE = (
    "Your connection is already sending the studio several uploads at once. Wait until one has arrived, then "
    "upload again."
)
# A raw HTTP answer's body, where the gate (``asgi_gate``) or the instant events' door (``instant``) refuses a request.
UPLOAD_TOO_LARGE = "This file is larger than the studio accepts ({mb} MB at most). Please upload a smaller one."
REQUEST_TOO_BIG = "This request is larger than the studio accepts."
REQUEST_TOO_DEEP = "This request nests its data deeper than the studio accepts."
REQUEST_TOO_SLOW = (
    "This request arrived too slowly, so the studio stopped waiting for it. Check your connection and try again."
)
BODIES_BUSY = "The studio is receiving many large requests at once right now. Try again in a moment."
UPLOAD_PAST_ROOM = "File size exceeded maximum allowed size of the studio's room for it."  # Gradio's own, ours added
UPLOAD_CUT_OFF = "The upload was cut off."
NO_SUCH_TAKE = "There is no such take (takes are kept for a limited time)."
NO_DEEP_LINKS = "The studio has no deep links."

# On a ZeroGPU Space (quota.py): the line beside each GPU button, and ZeroGPU's refusals in words.
RESERVES = "On this Space a press reserves about {time} of your daily ZeroGPU time; you are charged what it uses."
RESERVES_NOT_YET = "On this Space a press reserves some of your daily ZeroGPU time: how much shows once a song is here."
RESERVES_LATER = "On this Space a press reserves some of your daily ZeroGPU time: how much shows once it can be sent."
# Where a press would reserve more than a visitor who is not signed in has in a day (ZeroGPU's count).
RESERVES_OVER_DAY = " That is more than the {day} a day a visitor who is not signed in gets."
RESERVES_FITS_DAY = " Within that: {ways}."
# "Pace on this machine" (``pace.line``), under each result's details.
PACE_LINE = "Pace on this machine, {gpu}: {figures}; from {calls}."
# Before anything is measured, by where the studio runs (on ZeroGPU a press declares its GPU time).
PACE_NOT_YET = {
    True: "Pace on this machine: not measured yet. Each press declares the studio's first figures (one H100, "
    "without captured steps) until three of its kind have run here.",
    False: "Pace on this machine: not measured yet. Until three requests of a kind have run here, the studio "
    "estimates their time from its first figures.",
}
PACE_PRIOR_ONLY = {
    True: "Pace on this machine: not learned here (ACE_STUDIO_PACE=prior); every press declares the first figures.",
    False: "Pace on this machine: not learned here (ACE_STUDIO_PACE=prior); the studio estimates every request's "
    "time from its first figures.",
}
PACE_FIGURE = {
    "planner_ms_a_code": "the planner {value:.1f} ms a code",
    "dit_ms_a_step_60s": "the music model {value:.0f} ms a step of a 60 s take",
    "lyrics_tokens_a_second": "the lyrics writer {value:.0f} tokens a second",
}
PACE_UNMEASURED = {
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

# Why an upload's map is the studio's own and not the learned beat tracker's (``beat_network``): said once in the log.
BEATS_NOT_SET_UP = "no learned beat tracker is set up (beat_network.REPO): uploads are mapped by the studio's own"
BEATS_NOT_CACHED = (
    "{file} of {repo} is not in this machine's Hugging Face cache (the Space's build preloads it): uploads are "
    "mapped by the studio's own beat tracker"
)
BEATS_NOT_PINNED = (
    "{file} of {repo} in the Hugging Face cache is not the file the studio pins (its SHA-256 differs), so it is "
    "not loaded: uploads are mapped by the studio's own beat tracker"
)
BEATS_UNREADABLE = "{file} could not be read as a beat tracker ({why}): uploads are mapped by the studio's own"
BEATS_FAILED = "The learned beat tracker failed on {name} ({why}): its bars are mapped by the studio's own"
