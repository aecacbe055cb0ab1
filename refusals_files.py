"""A file's refusals, in a musician's words: what an upload (a song, a timbre reference), a LoRA file or a LoRA
preset is told when the studio cannot use it (``audio.AudioError``, ``lora.BadLora``,
``lora_presets.UnknownPreset``, each as the field's ``gr.Error``). Apart from ``refusals`` because ``audio``,
whose facts ``refusals`` reads, says these itself."""

# An upload read (``audio``, ``uploads``): ``what`` is the song or the timbre reference, ``name`` its file's name.
UPLOAD_FIRST = "Please upload a {what} first."
UPLOAD_NOT_FOUND = "The {what} file could not be found; please upload it again."
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
# A LoRA preset by its name (``lora_presets.resolve``): ``given`` the name as asked, ``choices`` the presets here.
PRESET_UNKNOWN = "There is no LoRA preset called {given}. Presets here: {choices}."
PRESET_OTHER_MODEL = "The LoRA preset {given} was made for {base}, not the model loaded here. Presets here: {choices}."
PRESET_NOT_INSTALLED = "The LoRA preset {given} is not installed on this studio. Presets here: {choices}."
PRESETS_NONE = "none with this model"
PRESET_OTHER_BASE = "another model"
