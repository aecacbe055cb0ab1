"""Every error message a visitor reads, in a musician's terms: what a ``gr.Error`` or ``checks.InputError``
says when a request cannot be made as asked (a field's validation error, a file that cannot be used, a model
or a GPU call that failed), and the title its toast carries (``TITLES``). Sections: uploaded files and LoRA
files; the fields' validation errors; a run that failed; Edit, Extend and the loop; the planner's features;
takes, stems and My takes; Edit's parts; the preparers; a take's record, its morph and variations; a model
the studio cannot build; the toasts' titles.

A module's own error whose message a visitor reads is worded here too: ``audio.AudioError``,
``lora.BadLora``, ``lora_presets.UnknownPreset``, ``models.ModelLoadError``, ``lyrics.LyricsError``,
``xl_model.Refused``, ``stems.WeightsMissing``, ``backend``'s, ``plan_format.PlanUnusable``. The other
messages: a field's help is ``tooltips``; what a run says as it works and what a result says, ``messages``.
This module imports nothing, so every module may word its errors here."""

from __future__ import annotations

# ---- Uploaded files and LoRA files ----

# An upload read (``audio``, ``uploads``): ``what`` is the song or the timbre reference, ``name`` its file's name.
UPLOAD_FIRST = "Please upload a {what} first."
UPLOAD_NOT_FOUND = "The {what} file could not be found; please upload it again."
# A file input given what the studio will not look at (``audio.unseen``): a URL, a path on the server.
_UPLOAD_IT = (
    "Upload the file itself: drop it on the page, or pass handle_file('a file on your computer') from "
    "gradio_client, which uploads it."
)
FILE_URL = "The {what} was given as a web address (URL), and the studio fetches nothing from the web. " + _UPLOAD_IT
FILE_NOT_UPLOADED = (
    "The {what} named is no file you uploaded, and a file named by where it lies on the server is never opened. "
    + _UPLOAD_IT
)
UPLOAD_UNREADABLE = (
    "The {what} ({name}) is not an audio file the studio can read, or it is damaged. Try WAV, FLAC, OGG or MP3."
)
UPLOAD_CHANNELS = (
    "The {what} ({name}) has {channels} channels; the studio takes up to {most} (mono, stereo or surround)."
)
UPLOAD_RATE = (
    "The {what} ({name}) has a sample rate of {rate} Hz, which the studio cannot use: it takes {low} kHz to {high} kHz."
)
UPLOAD_TOO_LONG = (
    "The {what} is {minutes:.1f} minutes long; the studio takes up to {most:g} minutes. Trim it and upload again."
)
UPLOAD_LONGER = "The {what} is longer than {most:g} minutes, the most the studio takes. Trim it and upload again."
# ``more``: "more than " where the length was counted only up to where it was refused.
UPLOAD_TOO_MUCH = (
    "The {what} ({name}) holds too much audio to read: {more}{minutes:.1f} minutes of {channels} channels at "
    "{khz} kHz. Export it as stereo at 48 kHz and upload it again."
)
_AS_ONE_FILE = "Export it as one file (WAV, FLAC, OGG or MP3) and upload it again."
UPLOAD_CHAINED = (
    "The {what} ({name}) is several Ogg streams joined one after another, and the studio can read only the "
    "first. " + _AS_ONE_FILE
)
UPLOAD_PAGES = (
    "The {what} ({name}) is cut into more pieces (Ogg pages) than {minutes:g} minutes of audio take. " + _AS_ONE_FILE
)
UPLOAD_TAIL = (
    "The {what} ({name}) stops being audio {mb:.2f} MB in: the other {rest:.1f} MB are damaged or not audio at "
    "all. " + _AS_ONE_FILE
)
UPLOAD_DAMAGED = "The {what} ({name}) contains damaged samples."
UPLOAD_EMPTY = "The {what} ({name}) is empty."
UPLOAD_SILENT = "The {what} ({name}) is silent."
# Too many uploads being decoded at once (``uploads.Busy``).
DECODES_BUSY = (
    "The studio is reading other songs right now and has no room for this one yet. Nothing was lost: "
    "try again in a moment."
)
# A take written (``audio.save``) or a format asked (``checks.check_format``): ``given`` as each shows it.
OUTPUT_FORMAT = "Unknown output format {given}; choose WAV, FLAC or MP3."

# What an adapter slot's file is called where a refusal names it as a file (``audio.unseen``): any slot
# takes a LoRA or a LoKr (``lokr``).
ADAPTER_FILE = "LoRA or LoKr file"
# A LoRA file (``lora``'s checks; ``backend`` as it loads one): ``name`` is its file's name.
LORA_MISSING = "The LoRA file is missing; upload it again."
LORA_NOT_SAFETENSORS = "{name} is not a .safetensors file. LoRAs for the studio come as .safetensors."
LORA_UNREADABLE = "{name} cannot be read as a .safetensors file; it may be damaged or incomplete."
LORA_NO_WEIGHTS = "{name} holds no LoRA weights (no lora_A / lora_B tensors). Is it a full model instead?"
LORA_HALF_PAIRS = (
    "{name} is incomplete: {count} of its {layers} layers have only half of their LoRA pair (lora_A without "
    "lora_B, or the reverse; first: {first})."
)
LORA_STRAY_ALPHA = "{name} has an alpha ({key}) that belongs to no LoRA pair, or is not one number."
LORA_NOT_WEIGHTS = (
    "{name} holds tensors that are not LoRA weights (first: {key}). Export only the LoRA's lora_A / lora_B "
    "matrices (and their alphas)."
)
LORA_RANKS = (
    "{name} is inconsistent: in {module} the lora_A matrix has rank {a} but lora_B has rank {b}. Export the LoRA again."
)
LORA_RANK_ZERO = "{name} has rank 0 in {module}: it holds no change to make. Export it with rank 1 or more."
LORA_DTYPES = "{name} stores its weights as {dtypes}; the studio takes LoRAs in float16, bfloat16 or float32."
LORA_OTHER_MODEL = (
    "This LoRA was made for a different model: {count} of its {used} weight matrices do not fit {label} (first: "
    "{first}). Use a LoRA trained on this model."
)
LORA_DAMAGED = (
    "{name} is damaged: {count} of its weight matrices hold invalid numbers (NaN or infinity). Export the LoRA again."
)
LORA_NOT_READ = "{name} could not be read as a LoRA ({error})."
LORA_NOT_APPLIED = "{name} could not be applied to {label} ({error})."
# A LoKr adapter in LyCORIS's layout (``lora.read_lokr_header``; ``lokr`` as it loads one): ``name`` its file's name.
LOKR_NOT_WEIGHTS = (
    "{name} is a LoKr adapter holding tensors that are not LoKr weights (first: {key}). Export only its "
    "lokr_w1 / lokr_w2 factors (and their alpha and dora_scale)."
)
LOKR_HALF = "{name} is an incomplete LoKr adapter: its layer {module} has no {missing}. Export it again."
LOKR_NOT_MATRIX = "{name} is an inconsistent LoKr adapter: in {module}, {part} is not a matrix. Export it again."
LOKR_RANKS = "{name} is an inconsistent LoKr adapter: in {module}, the halves of lokr_{side} have ranks {ranks}. Export it again."
LOKR_ALPHA = "{name} is an inconsistent LoKr adapter: in {module}, alpha is not one number. Export it again."
LOKR_DORA = (
    "{name} is an inconsistent LoKr adapter: in {module}, dora_scale holds {count} numbers for {outputs} outputs. "
    "Export it again."
)
LOKR_RANK_ZERO = (
    "{name} is a LoKr adapter of rank 0 in {module}: it holds no change to make. Export it with rank 1 or more."
)
LOKR_DTYPES = "{name} stores its LoKr adapter weights as {dtypes}; the studio takes float16, bfloat16 or float32."
LOKR_OTHER_MODEL = (
    "{name} is a LoKr adapter made for a different model: {count} of its {layers} layers do not fit {label} "
    "(first: {first} makes {rows}×{columns} where that layer is {outputs}×{inputs}). Use a LoKr adapter trained on "
    "this model."
)
LOKR_DAMAGED = (
    "{name} is a damaged LoKr adapter: {count} of its tensors hold invalid numbers (NaN or infinity). Export it again."
)
LOKR_NOT_APPLIED = "{name} could not be applied to {label} as a LoKr adapter ({error})."
# An adapter none of whose layers is one of the model's (``lora.check_lora_fits``, ``check_lokr_fits``):
# ``kind`` is "LoRA" or "LoKr adapter".
ADAPTER_CHANGES_NOTHING = (
    "{name} changes nothing in {label}: none of its {count} layers (first: {first}) is a layer of this model. "
    "Use a {kind} trained on this model."
)
# A LoRA preset by its name (``lora_presets.resolve``): ``given`` the name as asked, ``choices`` the presets here.
PRESET_UNKNOWN = "There is no LoRA preset called {given}. Presets here: {choices}."
PRESET_OTHER_MODEL = "The LoRA preset {given} was made for {base}, not the model loaded here. Presets here: {choices}."
PRESET_NOT_INSTALLED = "The LoRA preset {given} is not installed on this studio. Presets here: {choices}."
PRESETS_NONE = "none with this model"
PRESET_OTHER_BASE = "another model"


# ---- The fields' validation errors ----

# A field's checks (``checks``): the field's name, what it takes, what was sent.
# A call that sends fewer values than the endpoint takes (by position, a raw HTTP caller): Gradio's own message
# names its internals.
TOO_FEW_VALUES = (
    "This call sends {got} value{s}; /{api} takes {need}, in the order the API page lists them (gradio_client "
    "fills in the ones you leave out when you name the settings you set)."
)
TEXT_TOO_LONG = "This field takes up to {limit} characters; it has {n}. Shorten it."
NOT_A_NUMBER = "{name} must be a number."
NUMBER_TOO_LARGE = "{name} is far too large a number."
# A declared choice's (``parameters.Param.choices``) that has no check of its own.
NOT_ONE_OF = "{name} must be one of {choices} (you asked for {given})."
OUT_OF_RANGE = "{name} must be between {lo:g}{unit} and {hi:g}{unit} (you asked for {number:g}{unit})."
NOT_A_SWITCH = "{name} is a switch: true or false (you sent {given})."
AUTO_LENGTH_NEEDS_THINK = (
    "Length: auto lets Think choose the length, so it needs Think: turn Think on, or set a length."
)
PLAN_UNREADABLE = "The plan is not readable: it should be the plan a take's record holds (JSON), or empty."
PLAN_SKIPPED = "This take was made without a plan (Think was skipped), so there is no plan to bring back."
PLAN_UNUSABLE = "The plan cannot be used: {why}."
PLAN_CAPTION_TOO_LONG = "The plan's caption is longer than the {most} characters a caption may have."
BPM_OUT_OF_RANGE = "BPM must be between {low} and {high}, or 0 for auto (you asked for {bpm:g})."
KEY_UNKNOWN = "Unknown key {given}. Pick one like “C major” or “F# minor”, or auto."
METRE_UNKNOWN = "Unknown time signature {given}. Use {metres}, or auto."
# What an empty caption and empty lyrics are told, naming each tab's fields as the page labels them.
EMPTY_TEXT = {
    "generate": "Describe the music in the Style caption or write some Lyrics — both are empty.",
    "cover": "Describe the New style the song should take — a cover needs it (or New lyrics), and both are empty.",
    "edit": "Describe the Style for the region or write New words for the region — both are empty.",
    "morph": "Write the New style caption or the New lyrics the take should move toward — both are empty.",
}
CAPTION_TOO_LONG = "The caption is {n} characters; keep it under {most}."
LYRICS_TOO_LONG = "The lyrics are {n} characters; the model takes up to {most}. Shorten them."
STEPS_NOT_WHOLE = "Steps must be a whole number (you asked for {n:g})."
TURBO_STEPS = "{model} runs at most {most} steps (you asked for {n:g}); it is made for 8."
TAKES_NOT_WHOLE = "Takes must be a whole number from 1 to {most}."
LOUDNESS_NOT_NUMBER = "Loudness must be a number from {low:g} to {high:g} LUFS, or off (you asked for {given})."
LOUDNESS_OUT_OF_RANGE = (
    "Loudness must be between {low:g} and {high:g} LUFS, or off (you asked for {number:g}); -14 is what streaming "
    "services play."
)
SEED_OUT_OF_RANGE = "Seed must be a whole number from 0 to {most}, or -1 for random."
LANGUAGE_UNKNOWN = "Unknown vocal language {given}. Pick one of the studio's {count} languages."
# What one request may cost here (``budget.admit``): what was asked, what it would cost, what would fit.
TOO_COSTLY = "{asked} is more than one request may make here ({why}). {fits}."
# The song to work on (Describe; Cover, Extend and Edit: ``preparing``).
NO_SONG = "Please upload a song first."
# ---- A run that failed: the model, the GPU, saving a take ----

# A run that stopped on an error of the model's (``generation``, ``lyrics``): the log keeps the traceback.
MUSIC_FAILED = (
    "The model stopped with an error ({kind}). Nothing was saved; try a shorter song, fewer steps or fewer takes."
)
# The pipeline's own (``backend``): a take that must not be delivered (``BrokenOutput``), a mode the checkpoint
# loaded cannot run (``ModeUnavailable``; ``source``: the model as the page names it).
BROKEN_OUTPUT = (
    "The model produced broken audio (invalid numbers or a flat line), so nothing was saved. "
    "If you used a LoRA, it may be damaged; otherwise try another seed."
)
DESCRIBE_NO_TOKENIZER = (
    "Describe is not available with this model ({source}): it was loaded "
    "without the audio tokenizer that turns a song into the codes the planner reads."
)
COVER_NO_TOKENIZER = (
    "Cover is not available with this model ({source}): it was loaded without "
    "the audio tokenizer and detokenizer that turn the song into its musical blueprint. The studio's "
    "default checkpoint, {repo}, includes them (its tokenizer.* and "
    "detokenizer.* weights); a diffusers-layout folder needs audio_tokenizer/ and "
    "audio_token_detokenizer/ subfolders."
)
LYRICS_MODEL_MISSING = "The lyrics model could not be loaded: {error}"
# A model the start-up build could not make (``startup``), by its name there; and the GPU's time run out twice (``gpu``).
MODEL_NOT_LOADED = "The {name} could not be loaded: {error}"
# What each model is called where its build failed (``startup``'s kinds).
MODEL_NAMES = {
    "music": "music model",
    "base": "XL base model (Edit's parts)",
    "planner": "planner",
    "stems": "stem separation model",
    "lyrics": "lyrics model",
    "beats": "learned beat tracker",
}
# Why a model could not be had from the Hub (``models.download``'s ``ModelLoadError``), by ``hub.why_not``; ``kind``:
# the client's error by its class name alone (never its own text).
HUB_REFUSED = {
    "gated": "{repo} is gated on the Hugging Face Hub: accept its terms there and log in.",
    "missing": "The Hugging Face Hub has no model {repo} (or it is private): check the name.",
    "failed": "Could not download {repo} ({kind}).",
}
OUT_OF_GPU_TIME = "The GPU time ran out twice for this request. Try a shorter song or fewer steps or takes."
LYRICS_FAILED = "The writer stopped partway ({kind}: {error}). What it wrote so far is kept; try again."
# The Lyrics tab (``lyrics_page``).
LYRICS_UNUSABLE = "The writer returned no usable lyrics. Try again with another seed or more creativity."
NO_LYRICS_YET = "There are no lyrics to use yet — write some first."
LYRICS_TOO_LONG_TO_USE = (
    "These lyrics are {n:,} characters; Generate takes up to {most:,}. Shorten them, then press Use in Generate again."
)
CAPTION_TOO_LONG_TO_USE = (
    "The caption is {n:,} characters; Generate takes up to {most}. Shorten it, then press Use in Generate again."
)
# A take written to the output folder (``takes``): what failed, then why.
SONG_NOT_SAVED = (
    "Your song was made but could not be saved: {why}. Nothing was kept; please tell whoever runs this studio, "
    "then try again."
)
STEMS_NOT_SAVED = (
    "The stems were made but could not be saved: {why}. Nothing was kept; please tell whoever runs this studio, "
    "then try again."
)
SAVE_DISK_FULL = "the disk of the studio's output folder is full"
SAVE_READ_ONLY = "the studio may not write to its output folder (it is read-only)"
SAVE_FAILED = "writing to the output folder failed ({kind})"
# An example asked for by its number (``widgets``).
NO_SUCH_EXAMPLE = "There is no example {given}: the examples are numbered 0 to {last}."

# ---- Generate's loop and lock, a take's voice, Edit and Extend by lyric lines and by bars ----

# Generate's *Loop* (``loops``, ``checks.check_loop_bars``).
LOOP_BARS_CHOICE = "A loop is {choices} bars long (you asked for {given}); choose one of those, or Off for a song."
LOOP_NEEDS_BPM = (
    "A loop is counted in bars, so it needs its tempo before it is made: set a BPM, turn Think on to choose one, "
    "or turn Loop off."
)
LOOP_TOO_LONG = (
    "{bars} bars of {metre} at {bpm} BPM last {seconds:.0f} s, longer than the longest song here "
    "({longest}): choose fewer bars or a faster tempo."
)
LOOP_AUTO_LENGTH = "A loop's length is its bars at its tempo: turn Length: auto off (or Loop off)."
LOOP_FADES = "A loop plays round without a break, so it takes no fades: set both fades to 0."
LOOP_OFF_TEMPO = (
    "The loop came out at {bpm:g} BPM, too far from {asked} BPM to be put in time: one of its bars would be "
    "stretched {pct:.1f} % (a loop is stretched at most {most:g} %). Try another seed, or set the BPM nearer "
    "what the style plays."
)
# Generate's *Lock to the grid* (``modes``).
LOCK_NEEDS_BPM = "Lock to the grid needs a tempo to lock to: set the BPM, or turn Think on to choose one."
# A take's voice as Generate's timbre reference (``voice``, ``voice_row``).
VOICE_GONE = (
    "There is no take of yours named {name} kept here (the studio keeps takes {hours} hours): make it "
    "again, or upload a recording of the voice as the timbre reference."
)
VOICE_INSTRUMENTAL = "Take {name} is instrumental: it has no voice to lend. Choose a sung take."
VOICE_BOTH = "Give a timbre reference file or a take whose voice to use, not both: clear one of them."
VOICE_KEPT_GONE = (
    "Settings brought back, but not the voice: the take it came from ({name}) is no longer kept here, or "
    "is not yours. Upload a recording of the voice as the timbre reference."
)
# Edit by lyric lines (``edit_lines``): the song's sung lines, chosen to set the region.
LYRIC_TIMES_UNKNOWN = "The studio does not know when this song's words are sung: choosing lines or a section needs a take the studio made with lyrics (sent here with Send to, or from My takes), as it was written. Set the region by its seconds instead."
NO_SUCH_LINE = "The song has {count} sung lines; there is no line {given}. Choose lines between 1 and {count}."
LINES_NOT_NUMBERS = "“{given}” is not a line number. Give line numbers such as 3, 4 or 3-5."
LINES_TOO_MANY = "That is more line numbers than a song can have lines ({most} at most). Give the first and the last, such as 3-20: a choice covers every line between them."
NO_SUCH_SECTION = "The song has no section “{given}”. Its sections are: {names}."
SECTION_TWICE = "More than one section is called “{given}” (sections {numbers}): give the section's number instead."
SECTION_UNSUNG = "The section “{given}” has no sung lines to change. Choose another section or lines."
LINES_TOO_SHORT = "{which} last only {seconds:.2f} s ({start:g}–{end:g} s); Edit changes at least {least:g} s at a time. Choose more lines, or set the region by its seconds."
# A choice of lines (``edit_lines.which``) or of bars (``edit_bars.which``), as these errors and Edit's note say it.
LINE_CHOSEN = "Line {first}"
LINES_CHOSEN = "Lines {first}–{last}"
BAR_CHOSEN = "Bar {first}"
BARS_CHOSEN = "Bars {first}–{last}"
LINES_WITH_PART = "Lines and sections choose a region of the song; a part changes the whole song. Choose What to change: a region, or leave the lines empty."
# Edit and Extend by the bar (``edit_bars``; the bar lines: ``song_map``). A bar is one measure of the song's metre.
BARS_NOT_NUMBERS = "“{given}” is not a choice of bars: Bars takes bar numbers from 1, such as 9-16 or 9. (A section by its name: A whole section, under Choose by the words.)"
BARS_NO_GRID = "The studio hears no steady beat in this song, so it has no bars to count. Set the region by its seconds (Extend: the seconds to add) instead."
NO_SUCH_BAR = "The song has {count} bars; there is no bar {given}. Choose bars between 1 and {count}."
BARS_WITH_LINES = "Choose the region one way: by bars, or by lines or a section, not both. Leave one of them empty."
BARS_WITH_REGION = "Choose the region by bars or by seconds, not both: {which} run {start:g}–{end:g} s, but Region start and end say {typed}. Clear the bars, or set the region to {start:g}–{end:g} s."
BARS_WITH_PART = "Bars choose a region of the song; a part changes the whole song. Choose What to change: a region, or leave the bars empty."
# A region typed in seconds, as ``BARS_WITH_REGION`` says it (``edit_bars``); a value that is no number, as sent.
TYPED_REGION = "{start:g}–{end:g} s"
TYPED_REGION_AS_SENT = "{start} and {end}"
BARS_TOO_SHORT = "{which} last only {seconds:.2f} s; Edit changes at least {least:g} s at a time. Choose more bars."
EXTEND_BARS_NOT_COUNT = "“{given}” is not a number of bars to add. Give a whole number from 1, such as 8."
EXTEND_BARS_RANGE = "{bars} bars at this song's tempo add {seconds:.1f} s; Extend adds {low:g}–{high:g} s at a time, and the song stays at most {most}. Choose fewer or more bars, or add seconds instead."
# A musician's correction of the map (``edit_bars.bar_one_at``, ``bar_one.rephased``): the Bar 1 field, in seconds; its
# button named in quotes (a refusal is plain text, not Markdown). Refused by Edit, Extend and their readings alike.
BAR_ONE_NOT_NUMBER = "Bar 1 is a time in the song, in seconds (such as 2.35); “{given}” is not one. Leave it empty to count the bars as the studio hears them."
BAR_ONE_OUTSIDE = "Bar 1 at {given:g} s is outside the song, which is {seconds:.1f} s long: set it on a downbeat inside it (click “Bar 1 here”, then the waveform), or leave it empty."
BAR_ONE_NO_TEMPO = "Bar 1 is set at {given:g} s, but the studio hears no steady beat in this song to count bars from: type the song's BPM too, and its bars are laid from Bar 1 at that tempo."
# Where Extend's new music goes (``extend_where``): the field ``where``.
WHERE_UNREADABLE = (
    "Where: give end, start, a time such as 92.5 or 1:32.5, or a bar such as bar 9 ({given} is none of these)."
)
WHERE_OUTSIDE = "Where: {given} is outside the song, which is {seconds:.1f} s long. Choose a point inside it, or end to add after it."
WHERE_TOO_EARLY = "Where: {given} keeps less than {least:g} s of the song, too little for the new part to go on from. Choose a later point, or start for an intro before the song."
WHERE_NO_BARS = "Where: the studio hears no steady beat in this song, so it cannot find bar {bar}. Give the point in seconds (such as 92.5), or set Bar 1 and type the song's BPM."
WHERE_NO_SUCH_BAR = "Where: the song has {count} bars; there is no bar {bar}. Choose a bar between 1 and {count}."
WHERE_BARS_NO_TEMPO = "Where: bars to add {where} are counted at the song's tempo, and the studio hears none in this song. Type the song's BPM, or add seconds instead."
WHERE_TOO_LONG = "Where: the song kept is {kept:.0f} s; with {more:g} s of new music the take would be longer than {most}. Add at most {most_added:d} s, or choose an earlier point."
# Extend past the longest song: where less than Extend's least is left, it cannot add to the song at all.
EXTEND_TOO_LONG = (
    "The song is {song:.0f} s; adding {more:g} s would make it longer than {most}. Add at most {most_added:d} s."
)
EXTEND_AT_LONGEST = (
    "The song is {song:.1f} s, at or within {least:g} s of the longest the studio makes ({most}), and Extend adds "
    "at least {least:g} s: there is no room to extend it. Edit a region of it instead, or extend a shorter song."
)
# An ending closes the song (``extend_lyrics``): the new part must come last.
EXTEND_ENDING_BEFORE_START = (
    "An ending closes the song, and an intro before the start is followed by the whole song: untick Ending, or "
    "extend at the end or from a point."
)
# ---- The planner's features: *Write it* and Describe ----

# *Write it* and Describe, each the planner's (``songwriter``, ``describe``).
WRITE_IT_OFF = "Write it needs ACE-Step's planner, which is off on this studio (ACE_STUDIO_PLANNER_MODEL=none)."
WRITE_IT_UNUSABLE = "The planner could not write a song from this idea ({reason}). Nothing was changed; try again."
DESCRIBE_OFF = "Describe needs ACE-Step's planner, which is off on this studio (ACE_STUDIO_PLANNER_MODEL=none)."
DESCRIBE_TOO_SHORT = (
    "This song is {length} long; Describe listens to at least {least:g} s of a song. Upload a longer clip."
)
DESCRIBE_UNUSABLE = "The planner could not describe this song ({reason}). Nothing was changed; try again."
DESCRIBE_TOO_LONG = (
    "Describing this song would take about {seconds:.0f} s of GPU time, where one request may take {most:.0f} s "
    "here. Upload a shorter song."
)
# *Write it*'s idea (``songwriter``).
NO_IDEA = "Write an idea for the song first: one line, such as “{example}”."
IDEA_TOO_LONG = "An idea is at most {most} characters; yours has {n}. Say it in a line or two."
DESCRIBE_PLANNER_MISSING = "The planner could not be loaded: {error}"
# Why the planner's notes make no plan (``plan_format.PlanUnusable``, said through ``PLAN_UNUSABLE``,
# ``DESCRIBE_UNUSABLE`` and ``WRITE_IT_UNUSABLE``).
PLAN_FIELD_MISSING = "the planner's notes have no {key}"
PLAN_FIELD_INVALID = "the planner's {key} ({value!r}) is not a valid value"
PLAN_NOTES_ENDLESS = "its notes did not end"
# ---- Takes, stems and My takes ----

# Take to send (a result's take, for Send to, Use these settings, Variations, the morph, stems).
TAKE_NUMBER = "Take to send must be a whole number from 1 to {count} (you asked for {given})."
TAKE_ONLY_ONE = "This result has one take: send take 1 (you asked for {given})."
NO_TAKE_YET = "There is no take yet — make one first."
TAKE_GONE = "Take {n} is no longer kept by the studio; make it again."
# Stems (beneath each take).
STEMS_MISSING = (
    "Stems need the Demucs separation model (htdemucs_ft), and this studio does not have it: {error}.\n\n"
    "What to do: whoever runs the studio downloads it once with "
    "hf download adefossez/HTDemucs-ft (on a Space, README's preload_from_hub does it), "
    "or points ACE_STUDIO_STEMS_MODEL at a folder that holds it; on tiny random models, "
    "python tools/random_models.py DIR writes one and names it in the command it prints."
)
# Why the Demucs model is not here (``stems.WeightsMissing``, said through ``STEMS_MISSING``'s ``error``).
STEMS_NOT_CACHED = "{source} is not in this machine's Hugging Face cache"
STEMS_NO_BAG = "{folder} holds no {bag}.yaml"
STEMS_LACKS = "{folder} lacks the models {missing}"
STEMS_OTHER_SOURCES = "{folder} separates {sources}, not {stems}"
STEMS_NO_TAKE = "There is no take to split yet — make one first."
STEMS_GONE = "Take {n} is no longer kept by the studio; make it again to split it."
STEMS_FAILED = "Splitting into stems failed partway ({error}). Nothing was saved; try again."
# My takes (``my_takes``).
MY_TAKE_GONE = (
    "This take is no longer kept by the studio (it keeps takes {hours:g} h); use its settings to make it again."
)
MY_TAKE_NONE = "Pick a take from My takes first."
MY_TAKE_NO_SETTINGS = (
    "This take's settings were too long to keep in this browser; bring them back from the .json saved beside it."
)
# ---- Edit's parts ----

# Edit's parts (``part_tasks``, ``base_model``).
PARTS_MISSING = (
    "⚠️ Adding, taking out and completing parts need ACE-Step's XL base model ({source}), which this studio "
    "does not have: {why}. A region can still be made again."
)
PARTS_OFFLOADED = (
    "Parts need the base model on the accelerator beside the SFT model, and this studio runs its model "
    "offloaded to fit the card (ACE_STUDIO_OFFLOAD). A region can still be made again."
)
# Why the XL base cannot be had (``base_model.missing``, ``failure``), in a clause: ``PARTS_MISSING``'s ``why``.
BASE_FOLDER_LACKS = "the folder {folder} holds no transformer/ and condition_encoder/ of a diffusers-layout model"
BASE_NO_FOLDER = "the folder {folder} does not exist (set {env} to the folder that holds it)"
BASE_NOT_HERE = "its weights are not on this machine and {why} ({fix}, or set {env} to a folder that holds it)"
BASE_UNREADABLE = "it could not be read as a model ({kind})"
BASE_UNREADABLE_SAYING = "it could not be read as a model ({kind}: {said})"
PART_CHANGE = "What to change must be one of {named}; got {got!r}."
PART_UNKNOWN = "Which part must be one of the parts the model knows: {named}."
PARTS_NONE = "Choose at least one part to add, from: {named}."
# A part's field sent with a change that does not use it (``part_tasks.check_unused``); ``change``: the change's label.
PART_UNUSED = (
    "Which part (part: {given}) names the one part Add a part or Take a part out makes; {change} does not "
    "use it. Choose Add a part or Take a part out, or leave part out."
)
ADD_PARTS_UNUSED = (
    "Parts to add (add_parts: {given}) are the parts Complete the song adds; {change} does not use them. To add "
    "one part, name it in Which part (part) with Add a part; to add several, choose Complete the song."
)
# A field the chosen way of a mode does not use (``parameters.USED_BY``), sent: named, with the way and what uses it.
UNUSED_FIELD = "{field} ({name}: {given}) is not used by {way}{because}: leave it {empty}, or {remedy} to use it."
# Why a way does not use a field, where the way's name does not say it: ``UNUSED_FIELD``'s ``because`` after a comma.
_ADAPTER_FIELDS = (
    "lora",
    "lora_scale",
    "lora_preset",
    *(f"lora_{n}{t}" for n in (2, 3) for t in ("", "_scale", "_preset")),
)
UNUSED_BECAUSE = {
    **dict.fromkeys(_ADAPTER_FIELDS, "as parts are made by the base model, and an adapter is made for the SFT model"),
    "dcw": "which runs without it, as upstream's flow edit does",
}
# How ``UNUSED_FIELD`` says to leave a field (its ``empty``): empty, a switch on or off, a value.
LEFT_EMPTY, LEFT_ON, LEFT_OFF, LEFT_AT = "empty", "on", "off", "at {value}"
# Each by the mode, or by the way where a mode's ways need words of their own (Cover's "morph").
UNUSED_REMEDY = {
    "edit": "choose {ways}",
    "cover": "turn Morph on",
    "generate": "turn Think on",
    "morph": "turn Morph off",
}
UNUSED_WAY = {"cover": "a cover without Morph", "generate": "a song made with Think off", "morph": "a morph (Morph on)"}
# Lyrics sent with a part that sings nothing (``part_tasks.check_unsung``); ``change``: the change's label.
PART_LYRICS_UNSUNG = (
    "Lyrics (lyrics: {given}) are sung by a sung part, and {change} with {parts} adds none: nothing would sing "
    "them. Leave the lyrics empty, or add Vocals or Backing vocals to have them sung."
)
# The fields' names as a refusal gives them, where they are no declared parameter's (``parameters.Param.label``).
FIELD_NAMES = {
    "prompt": "Style",
    "lyrics": "Lyrics",
    "bpm": "BPM",
    "repainting_start": "Region start",
    "repainting_end": "Region end",
    "repaint_mode": "Repaint mode",
    "first_downbeat": "Bar 1 at",
    "morph_prompt": "The song's own style",
    "morph_lyrics": "The song's own words",
    "rewrite_caption": "Let Think rewrite the caption",
    "lora": "LoRA",
    "lora_preset": "LoRA preset",
    **{f"lora_{n}": f"Adapter {n}" for n in (2, 3)},
    **{f"lora_{n}_preset": f"Adapter {n} preset" for n in (2, 3)},
}
PARTS_UNKNOWN = "Parts to add must be chosen from the parts the model knows: {named}."
PARTS_SONG_SHORT = "The song is {seconds:.1f} s long; parts are made over a song of at least {least:g} s."
PARTS_SONG_LONG = "The song is {minutes:.1f} minutes long; parts are made over at most {most:g} minutes."
# ---- The preparers' checks ----

# What the preparers share (``preparing``): Think and its plan, a region's repainting, Cover's morph, a LoRA.
PLAN_WITHOUT_THINK = "A plan is what Think follows: turn Think on, or clear the plan."
THINK_UNAVAILABLE = (
    "Think is not available here: this studio runs without ACE-Step's planner "
    "(ACE_STUDIO_PLANNER_MODEL=none). Turn Think off."
)
REPAINT_MODE = "Repaint mode must be one of {modes}; got {got!r}."
# A region asked past the song or backwards (``preparing.check_region``; ``length``: the song's seconds).
REGION_PAST_BOTH_ENDS = (
    "The region {start:g}–{end:g} s reaches past both ends of the song: it starts {before:g} s before it and ends "
    "{after:.1f} s after it (the song is {length:.1f} s long). Pick a region between 0 and {length:.1f} s."
)
REGION_BEFORE_SONG = (
    "The region {start:g}–{end:g} s lies wholly before the song's start. Pick a region between 0 and {length:.1f} s."
)
REGION_STARTS_BEFORE = (
    "The region {start:g}–{end:g} s starts {before:g} s before the song does: only 0–{end:g} s of it lies in the "
    "song. Start it at 0 s or later."
)
REGION_AFTER_SONG = (
    "The region {start:g}–{end:g} s lies wholly after the song's end (the song is {length:.1f} s long). "
    "Pick a region between 0 and {length:.1f} s."
)
REGION_ENDS_AFTER = (
    "The region {start:g}–{end:g} s ends {after:.1f} s after the song does (the song is {length:.1f} s long): only "
    "{start:g}–{length:.1f} s of it lies in the song. End it at {length:.1f} s or sooner."
)
REGION_BACKWARDS = "The region must start before it ends (start {start:g} s, end {end:g} s)."
REGION_TOO_SHORT = "The region is {seconds:.2f} s; make it at least {least:g} s long."
MORPH_NEEDS_SOURCE_TEXT = (
    "Morph moves the song from what it is to the new style: describe the song as it is now "
    "(The song's own style), or give its words."
)
LORA_BOTH = (
    "Pick a LoRA preset or upload a LoRA file, not both: each adapter's row holds one. "
    "Clear the upload or set the preset to None, or put the other in a row of its own (Add another adapter)."
)
ADAPTER_STRENGTH_ALONE = (
    "{label} is {value:g}, but its row holds no adapter: upload a LoRA or LoKr file or pick a preset for it, "
    "or set its strength back to 1."
)
ADAPTER_TWICE = (
    "{name} is given twice (adapters {first} and {second}): give each adapter once, in one row, "
    "with the strength you want."
)
LORA_PRESET_NAME = "The LoRA preset must be a preset's name, not {value}."
# ---- A take's record, its morph and its variations ----

# A take's record read back (``records``): an upload of its .json, or a result's metadata.
RECORD_UPLOAD = "Upload the .json file saved beside a take."
RECORD_UNREADABLE = "The record file could not be read; upload it again."
RECORD_TOO_LARGE = "This file is larger than a take's record ({most} KB at most)."
RECORD_FILE_TOO_DEEP = "This file is not a take's record: it nests its data far deeper than a record does."
RECORD_NOT_JSON = "This file is not a take's record: it is not readable JSON."
RECORD_NOT_ONE = "This is not a take's record. Use the .json file saved beside a take."
RECORD_TOO_DEEP = "This is not a take's record: it nests its data far deeper than a record does."
RECORD_TAKES = "This record's takes ({given}) cannot be used: a record lists its takes."
RECORD_NOT_TEXT = "This record's {name} is not text ({given})."
RECORD_UNUSABLE = "This record's {name} ({given}) cannot be used: {why}"
# The files a record names but cannot carry (``records.files_note``), each as ``RECORD_FILE``: told as its settings
# come back (``SETTINGS_BACK``: ``results``), refused where a request needs them (``variations``, ``take_morph``).
RECORD_FILES = "Upload again what a take's record cannot carry: {files}."
RECORD_FILE = "{kind} {name}"
RECORD_FILE_KINDS = {
    "lora": "LoRA",
    "lora_preset": "LoRA preset (not installed here)",
    **{f"lora_{n}": f"adapter {n}" for n in (2, 3)},
    **{f"lora_{n}_preset": f"adapter {n}'s preset (not installed here)" for n in (2, 3)},
    "reference_audio": "timbre reference",
    "src_audio": "source song",
}
SETTINGS_BACK = "Settings brought back. {note}"
# The morph of a take (``take_morph``) and a variation of one (``variations``).
MORPH_NO_TAKE = "There is no take yet: make one in Generate first, then morph it."
MORPH_NOT_GENERATE = (
    "Only a take made in Generate (or a morph of one) can be morphed here. Cover's Morph the song moves any song."
)
# *Bring back a take's settings* given a path or a URL rather than an upload (``results.settings_from_file``).
RECORD_AS_FILE = "take's record (the .json saved beside the take)"
RECORD_NOT_UPLOADED = FILE_NOT_UPLOADED.format(what=RECORD_AS_FILE)
MORPH_UNREADABLE = "This take's record cannot be read as a Generate take's."
MORPH_UNREADABLE_BECAUSE = MORPH_UNREADABLE + " ({why})"
MORPH_SAME = (
    "The caption and lyrics are the take's own: change the style or the words, and the morph moves the take "
    "toward them."
)
MORPH_LORA = "{note} A morph of this take needs it: make the take again in Generate with it, then morph that."
MORPH_REFERENCE = (
    "This take was made with the timbre reference {name}: upload that file again as the timbre reference "
    "(Advanced settings) to morph it."
)
VARIATIONS_OF_A_MORPH = (
    "A morph starts from its song, not from noise, so it has no noise to vary: morph the take it came from "
    "again with another seed."
)
VARIATIONS_COUNT = "How many must be a whole number from 1 to {most}."
VARIATIONS_TOO_DEEP = "This take is already a variation {most} times over; make variations of an earlier one."
VARIATIONS_NO_TAKE = "There is no take yet: make one first, then its variations."
VARIATIONS_LORA_FILE = (
    "This take was made with a LoRA file ({name}), which a record cannot carry: make it again in its tab with the "
    "file to vary it."
)
# ``what``: the song or the timbre reference.
VARIATIONS_FILE_MISSING = (
    "Variations of this take need the {what} it was made from ({name}): upload it again as the {what}."
)
VARIATIONS_FILE_OTHER = "This take was made from the {what} {name}, not {given}: upload that one to vary it."
# A record's entries as a variation reads them (``variations``).
RECORD_MODE_UNKNOWN = "This record's mode ({given}) is not one of the studio's."
RECORD_TAKE_NO_SEED = "This record's take {n} is not a take's entry (it has no seed)."
NOISE_TOO_LONG = "This record's noise ({given}) cannot be used: it lists at most {most} [seed, amount] pairs."
NOISE_NOT_PAIR = "This record's noise has a step ({given}) that is not a [seed, amount] pair."
NOISE_NO_SEED = "This record's noise has a step with no seed ({given})."
# A text the music model's text encoder would cut short (``text_limits``), by field.
TOO_MANY_TOKENS = {
    "lyrics": "The lyrics are {n} tokens long; the model reads at most {most}. Shorten them.",
    "morph_lyrics": "The song's own words are {n} tokens long; the model reads at most {most}. Shorten them.",
    "prompt": "The caption is {n} tokens long; the model reads at most {most} of a caption. Shorten it.",
    "morph_prompt": "The song's own style is {n} tokens long; the model reads at most {most} of it. Shorten it.",
}

# ---- A model the studio cannot build: for whoever runs the studio ----

# A model the studio cannot build (``models.ModelLoadError``, said through ``MODEL_NOT_LOADED``,
# ``LYRICS_MODEL_MISSING`` and the planner's): the setting or the files at fault, for whoever runs the studio.
VARIANT_UNKNOWN = "Unknown ACE_STUDIO_VARIANT {given!r}; choose one of {choices}."
MODEL_LAYOUT_UNKNOWN = (
    "{folder} is neither a diffusers pipeline (model_index.json) nor an ACE-Step checkpoint "
    "(config.json + model.safetensors)."
)
MODEL_NO_SHARED = "No {name} folder next to {folder} and no shared repo to fetch it from."
MODEL_SHARED_LACKS = "{repo} has no {name} folder."
CHECKPOINT_KEYS_UNKNOWN = "Checkpoint has keys no component takes: {keys}"
CHECKPOINT_SHARD_MISSING = "Checkpoint shard {shard} is missing from {folder}."
MODEL_CONFIG_FIELD = "{config} lacks the field {field}."
MODEL_CODE_REFUSED = "{folder} cannot be run as its model code would: {why}."
MODEL_NO_SILENCE = "{folder} has no silence_latent.pt."
MODEL_WEIGHTS_MISFIT = "{name} weights do not match the model: {detail}"
MODEL_WEIGHTS_MISSING_KEYS = "missing {keys}"
MODEL_WEIGHTS_MISFIT_KEYS = "not fitting {keys}"
MODEL_KEYS_MORE = " (+{n} more)"
# A checkpoint's config.json field the studio's model classes cannot compute (``xl_model.Refused``, said through
# ``MODEL_CODE_REFUSED``).
XL_LAYER_TYPES = "its config.json field layer_types ({types!r}) is not one attention type per DiT layer"
XL_ACTIVATION = "its config.json field hidden_act is {act!r}; the studio's model classes compute SiLU only"
XL_ROPE_SCALING = (
    "its config.json field rope_scaling ({scaling!r}) asks for scaled RoPE; the studio computes plain RoPE"
)
XL_LEGO_SFT = "its config.json field is_lego_sft asks for upstream's lego-SFT captions, which the studio does not write"
XL_ENCODER_LAYERS = "its config.json field {field} ({value}) exceeds num_hidden_layers ({layers})"
OFFLOAD_UNKNOWN = "Unknown ACE_STUDIO_OFFLOAD {given!r}; choose auto, {modes}."
# Think's planner (``planner``, ``plan_constraints``).
PLANNER_NO_FOLDER = "Planner folder {source} does not exist."
PLANNER_OFF = "Think is off on this studio (ACE_STUDIO_PLANNER_MODEL=none)."
PLANNER_UNREADABLE = "the planner ({name}): {error}"
PLANNER_NO_CODES = "the planner's tokenizer has no <|audio_code_N|> tokens"
PLANNER_NO_THINK = "the planner's tokenizer has no <think> token"
PLANNER_NO_END = "the planner's tokenizer has no end-of-sequence token"
PLANNER_CANNOT_WRITE = "the planner's tokenizer cannot write {text!r}"
# The lyrics writer's engine and weights (``lyrics``).
LYRICS_ENGINE_UNKNOWN = "Unknown ACE_STUDIO_LYRICS_ENGINE {given!r}; choose auto, mlx or transformers."
LYRICS_ENGINE_NO_MLX = "ACE_STUDIO_LYRICS_ENGINE=mlx, but mlx-lm is not installed (pip install mlx-lm)."
# ``source``: the writer's folder or repo as set (ACE_STUDIO_LYRICS_MODEL), else ``THE_LYRICS_MODEL``.
LYRICS_MODEL_UNREADABLE = "{source}: {error}"
THE_LYRICS_MODEL = "the lyrics model"
# The Lyrics tab's fields (``lyrics.make_request``, ``lyrics.LyricsError``).
LYRICS_NO_THEME = "Tell the writer what the song is about — the theme is empty."
LYRICS_NO_SECTIONS = "For a custom structure, list the sections, e.g. “Intro, Verse, Chorus, Outro”."
LYRICS_STRUCTURE_UNKNOWN = "Unknown structure {given}. Choose one of: {choices}."
LYRICS_LANGUAGE_UNKNOWN = "Unknown vocal language {given}. Pick one of the studio's {count}."
LYRICS_LENGTH_UNKNOWN = "Unknown length {given}. Choose short, medium or long."
CREATIVITY_NOT_NUMBER = "Creativity must be a number."
CREATIVITY_OUT_OF_RANGE = "Creativity must be between {low:g} and {high:g} (you asked for {given:g})."

# ---- The toasts' titles ----

# The heading of an error's toast (Gradio's says "Error"): what was clicked, by the event function's name
# (``event_errors.expected_errors``: the first it starts with); an error with a title of its own keeps it.
TITLES = (
    ("write_song", "Write it"),
    ("write_into_generate", "Write it"),
    ("write_lyrics", "Write lyrics"),
    ("use_in_generate", "Use in Generate"),
    ("stems", "Split into stems"),
    ("describe", "Describe"),
    ("variations", "Variations"),
    ("send_to_cover", "Send to Cover"),
    ("send_to_extend", "Send to Extend"),
    ("send_to_edit", "Send to Edit"),
    ("send_my_take_to_cover", "Send to Cover"),
    ("send_my_take_to_extend", "Send to Extend"),
    ("send_my_take_to_edit", "Send to Edit"),
    ("settings_from", "Use these settings"),
    ("use_settings", "Use these settings"),
    ("keep", "My takes"),
    ("kept", "My takes"),
    ("generate", "Generate"),
    ("cover", "Cover"),
    ("extend", "Extend"),
    ("edit", "Edit"),
)
TITLE = "ACE Music Studio"  # an event not named above
WRITE_IT_OFF_TITLE = "Write it not available"  # ``songwriter.check``: no planner here
