"""Each field's help, written for musicians: the ``info=`` beside a field, its placeholder and examples, the
note under a button, and the MCP tools' help where a parameter's is the page's. Error messages are
``error_messages``; every other message (a run's progress, a result, the studio's state) is ``messages``."""

import audio
import plan_format

# The facts the help names, read from the modules that hold them.
_SHORTEST, _LONGEST = f"{audio.MIN_SECONDS:g} s", f"{audio.MAX_SECONDS / 60:g} min"
_MINUTES = f"{audio.MAX_SECONDS / 60:g} minutes"
_TEMPI = "–".join(map(str, plan_format.BPM_RANGE))

CAPTION = "Describe the sound: genre, mood, instruments, voice."
CAPTION_EXAMPLE = "E.g. “warm lo-fi hip hop, mellow Rhodes, vinyl crackle”."  # in the empty box, and for agents
LYRICS = (
    "One section tag per part — [Verse], [Chorus], [Bridge], [Outro] — then its lines. "
    "Leave empty or tick Instrumental for no singing."
)
INSTRUMENTAL = "No vocals: the lyrics become [Instrumental]."
# Generate's tempo row (BPM, time signature, Loop, Instrumental, Lock to the grid), each help whole in its card and
# short enough that the row keeps the Generate button and the examples on a desk's first screen (the metre's and the
# lock's fuller help is the other tabs' and the API's).
TEMPO_ROW = {
    "bpm": f"Beats a minute, {_TEMPI}; 0: the model picks.",
    "time_signature": "4/4 for pop, 3/4 for waltzes, 6/8 swaying.",
    "loop_bars": "Plays round, no seam.",
    "instrumental": "No vocals, no lyrics.",
    "lock_to_grid": "Every bar warped onto the BPM.",
}
THINK = (
    "ACE-Step's planner first works out the tempo, key, time signature and a fuller caption, then sketches the "
    "whole song, its melody and structure, for the music model to play. Slower to start; better structure. "
    "Values you set win."
)
THINK_CAPTION = (
    "On, the music model gets Think's fuller caption, as ACE-Step does; off, it gets your caption as you wrote it "
    "(Think's tempo, key and time signature still count)."
)
THINK_LENGTH = f"Think chooses how long the song is ({_SHORTEST} to {_LONGEST}). Off, the duration below is used."
PLAN = (
    "A take's plan, brought back by “Use these settings”: Think follows it instead of thinking again, so the take "
    "comes out again from its seed. Clear it to let Think plan anew."
)
LANGUAGE_UNKNOWN = "Unknown: the model tells from the lyrics (unknown)"
THINK_OFF = "Think is not available here: the studio runs without ACE-Step's planner."
DURATION = f"Length of the song in seconds, from {_SHORTEST} to {_MINUTES}. Longer songs take longer to make."
BPM_DETECTED = (
    "Tempo of the song, filled in from the upload (0 = let the model choose). If it sounds twice or "
    "half as fast as the song feels, use ½ or 2×."
)
KEY = "Key and scale, e.g. “A minor”. Auto lets the model choose one that fits the style."
TIME_SIGNATURE = (
    "The song's metre: 4/4 for most pop and rock, 3/4 for waltzes, 6/8 for a rolling, swaying feel, 2/4 for "
    "marches. Auto lets the model decide."
)
# How a metre is written by musicians, for each the model takes (``plan_format.TIME_SIGNATURES``: beats a bar).
METRE_NAMES = dict(zip(plan_format.TIME_SIGNATURES, ("2/4", "3/4", "4/4", "6/8"), strict=True))
LANGUAGE = (
    "Language the vocals are sung in. It should match the language of the lyrics. "
    "Without lyrics the model is told “unknown”, as ACE-Step does for instrumentals."
)
SEED = "Same seed + same settings = the same song. -1 picks a new random seed each time; the seed used is shown with every take."
STEPS = (
    "Denoising steps. Turbo is trained for 8; SFT and Base want about 50 — fewer steps are faster "
    "but blurrier, more than ~60 rarely helps."
)
GUIDANCE = (
    "How strictly the music follows your caption and lyrics. ~7 is balanced; higher is more literal "
    "but can sound harsh. Turbo ignores it (guidance is built into the model)."
)
GUIDANCE_INTERVAL = "Guide only while the time t (1: noise, 0: the song) is in this range; steps outside cost half."
SHIFT = (
    "Timestep shift: how the steps are spread between noise and detail. Higher values spend more steps "
    "early, on the overall structure. ACE-Step's own default is 3 for every model."
)
TAKES = "How many variations to make in one go (1–4); each gets its own seed."
# Generate's *Loop* (``loops``): the page while it is on.
LOOP_DURATION = "Not used while Loop is on: the loop's bars at its BPM and time signature set its length."
LOOP_LENGTH = "A loop of {bars} bars of {metre} at {bpm} BPM: {seconds:.1f} s. Not used while Loop is on: its bars set the length."
LOUDNESS = (
    "How loud the take leaves: -14 LUFS is what streaming services play; peaks stay under -1 dBTP (Generate: "
    "its Ceiling). "
    "Off keeps the render as it came."
)
CEILING = (
    "The highest the take's true peaks may reach, in dBTP: -1 is the usual delivery, -2 what streaming services "
    "ask of a master louder than -14 LUFS (their encoders add peaks). Loudness off leaves the take as rendered."
)
FADE_IN = "Fade the start in over this many seconds (0: none)."
FADE_OUT = "Fade the end out over this many seconds (0: none)."
FORMAT = "WAV is lossless and largest, FLAC is lossless and smaller, MP3 is smallest for sharing."
COVER_CAPTION = "The style of the new version, e.g. “acoustic folk, fingerpicked guitar, soft male vocals”."
COVER_STRENGTH = (
    "Audio cover strength, as in ACE-Step: the share of the steps that follow the original's melody and "
    "structure. 1 = it follows the original all the way (same melody and structure, new sound); "
    "0 = a fresh song from your caption; in between, the original sets the structure and your style "
    "finishes it."
)
COVER_LYRICS = "Leave empty to keep the song's words; write new lyrics to have them sung instead."
# A file input's help in the API's documentation (``widgets.any_file``).
FILE_INPUT = (
    "A file you upload: from Python, handle_file('song.wav') with a file on your computer (gradio_client uploads "
    "it); from elsewhere, POST it to /gradio_api/upload and pass the path it returns. The studio fetches no URL "
    "and opens no file by its place on the server."
)
REFERENCE = (
    "Optional: a recording whose voice or instrument colour (timbre) the take should borrow; "
    "ACE-Step reads three 10 s stretches of it, one from each third (a short one is repeated), "
    "chosen by the seed; for a take of this studio's (*Use this voice* under a take, or in My takes), "
    "the three where its voice sings."
)
DCW = (
    "ACE-Step's step correction (DCW): after each step it nudges the music's coarse and fine detail away "
    "from the model's blurry guess of the end result. As in ACE-Step itself it starts on for Turbo models "
    "only: on SFT and Base it was heard to turn songs into noise. Your choice here is always kept."
)
COVER_NOISE = (
    "Start from the song itself instead of pure noise: 0 starts from noise (ACE-Step's default), "
    "higher values start closer to the original, so the cover keeps more of its sound "
    "(ACE-Step's own page uses 0.2). ACE-Step's users report near-silence above 0 with the XL SFT and "
    "Base models (its issue #1329, open): listen, and go back to 0 if the cover comes out silent."
)
EXTEND_SECONDS = f"How much new music to add at the end (5–240 s). The song stays at most {_MINUTES} long."
EXTEND_CAPTION = (
    "Describe how the song should go on. Your original part is kept exactly as it is, at its own sample rate, up to "
    "the new part's 50 ms fade-in at its end: in WAV, in FLAC for a 16- or 24-bit song (MP3 encodes it again)."
)
REGION = "The stretch to regenerate, in seconds from the start (at least 1 s). Listen to the song above to pick it."
EDIT_LYRICS = (
    "The words to sing in the region. Everything outside the region stays exactly as it was, at your song's own "
    "sample rate: in WAV, in FLAC for a 16- or 24-bit song (MP3 encodes it again)."
)
SNAP, SECTION_CHOOSE = "Snap the drag to bar lines", "{name} ({span}): click to regenerate this section"
# Edit by lyric lines (``edit_lines``): the song's sung lines, chosen to set the region.
EDIT_LINES = (
    "Tick the lines to change, or pick a whole section: the region covers them, from a breath before the first "
    "to a breath before the next line, moved to the nearest quiet moment. Their words appear in New words for "
    "the region: rewrite them there; the rest of the song's words stay as they are."
)
EDIT_LINES_NOTE = (
    "{which} chosen: the region is {start:g}–{end:g} s. The words are below, in New words for the region, to rewrite."
)
EDIT_SECTION = "Tick every line of one section at once."
# Edit and Extend by the bar (``edit_bars``; the bar lines: ``song_map``). A bar is one measure of the song's metre.
EDIT_BARS = "Bars to change, counted from 1 as the studio hears them: 9-16, or 9. The region runs from the start of the first to the start of the bar after the last (the song's end after its last bar). Leave empty to set the region by its seconds."
EXTEND_WHERE = (
    "Where the new music goes: end (after the song), start (an intro before it), or a point in the song (92.5, "
    "1:32.5 or bar 9, counted from Bar 1): the song is kept up to that point and what followed is made again."
)
# Extend's *Where* on the page: the three places, a point's field and its button on the waveform (``waveform``).
EXTEND_PLACE = (
    "At the end adds the new part after the song. Before the start adds an intro, the whole song kept after it. "
    "From a point keeps the song up to the point and makes what follows again."
)
EXTEND_POINT = (
    "Where the new part starts: seconds (92.5), minutes and seconds (1:32.5) or a bar counted from Bar 1 (bar 9). "
    "Or click “Extend from here”, then the waveform: the point goes on the nearest bar line."
)
EXTEND_POINT_PLACEHOLDER = "bar 9, 1:32.5 or 92.5"
EXTEND_POINT_BUTTON, EXTEND_POINT_ARMED = "Extend from here", "Click the waveform where the new part starts"
EXTEND_POINT_HERE = "Set the point Extend starts from: click this, then the waveform."
EXTEND_ENDING = (
    "Close the song with the new part: it ends as an outro (an [Outro] section added to its lyrics where they have "
    "none) rather than stopping mid-phrase, in whole bars so its last bar line is the song's end. Not for an intro."
)
EXTEND_BARS = "Whole bars to add at the song's tempo (such as 8), in place of the seconds: the new part ends on a bar line, so a bar after it would start on the beat. Leave empty to add the seconds above."
# A musician's correction of the map (``edit_bars.rephased``; the button on the waveform: ``waveform``).
# A field's help is plain text (not Markdown): the button is named in quotes.
BAR_ONE = "Where bar 1 starts, in seconds: click “Bar 1 here”, then the waveform on a downbeat (or type it). Bar 1 starts exactly there, and the bars are counted from it on the beats the studio heard, or at the BPM typed where it heard none. Empty: bars as the studio hears them."
BAR_ONE_PLACEHOLDER = "seconds, or click “Bar 1 here”"
BAR_ONE_BUTTON, BAR_ONE_ARMED = "Bar 1 here", "Click the waveform on bar 1's downbeat"
# Describe (Cover, Extend, Edit): the planner listens to the uploaded song and fills the empty fields.
DESCRIBE = (
    "Let ACE-Step's planner listen to the song and fill in what you left empty: style, lyrics, language, "
    "tempo, key and time signature. The measured tempo, key and time signature win where the planner hears them differently."
)
IDEA = (
    "One line about the song. Press Write it and ACE-Step's planner writes the caption, lyrics, tempo, key, "
    "time signature and length from it."
)
WRITE_IT = (
    "Write it fills the fields you left empty (the Style caption, the Lyrics unless Instrumental is ticked, "
    "BPM, key, time signature and vocal language) and sets the length; edit them before you press Generate."
)
VARIATIONS = (
    "New takes of the chosen take: its caption, lyrics, length, seed and plan kept, its starting noise mixed with "
    "new noise. Amount 0 makes the take again, 1 a new song on the same plan."
)
VARIATION_AMOUNT = "How much new noise: 0.1–0.3 changes details, 0.5 and above the arrangement too."
VARIATION_COUNT = "How many variations, made together in one run."
VARIATION_SEED = "-1 draws new noise each press; the seed a variation's record names makes it again."
LYRICS_THEME = "The idea in a sentence or two: a story, a feeling, a place. E.g. “leaving my hometown at dawn”."
LYRICS_GENRE = "Optional: shapes word choice and rhythm, e.g. “country ballad” or “drill”."
LYRICS_MOOD = "Optional: e.g. hopeful, bittersweet, defiant."
LYRICS_LANGUAGE = "The lyrics are written in this language; Generate's vocal language should match it."
LYRICS_STRUCTURE = "The song's sections in order. Custom uses your own list below."
LYRICS_CUSTOM = (
    "For a custom structure: sections separated by commas, e.g. “Intro, Verse, Chorus, Verse, Chorus, Outro”."
)
LYRICS_LENGTH = "Short ≈ 2 lines per section, medium ≈ 4, long ≈ 6."
LYRICS_SEED_USED = "The seed these lyrics were written with: put it in Seed to write them again."
LYRICS_TEMPERATURE = "Low = safe and predictable; high = surprising images and rhymes (and more mistakes)."
LORA = (
    "A LoRA (.safetensors) trained on this model adds a style or voice. It applies to this request only "
    "and is removed right after, so nobody else hears it."
)
LORA_PRESET = (
    "A LoRA published on the Hugging Face Hub, already installed here and made for this model. Like an upload, "
    "it applies to this request only. Pick one or upload your own, not both."
)
LORA_PRESET_NONE = "None"
# The second and third adapter's rows (``form_fields.adapter_rows``).
ADAPTER_FILE = "Adapter {n}: a LoRA or LoKr file"
ADAPTER_PRESET = "Adapter {n} preset"
ADD_ADAPTER = "Add another adapter"
ADAPTER_STRENGTH_MCP = (
    "How strongly adapter {n} (lora_{n} or lora_{n}_preset) colours the result: 0 not at all, 1 as trained. "
    "Set it only with an adapter in that slot."
)
LORA_READ = "✓ {name} is a LoRA the studio can read; it applies to this request only and is removed right after."
LORA_SCALE = "How strongly the LoRA colours the result: 0 = not at all, 1 = as trained, up to 2 to exaggerate it."
TAGLINE = "Describe a style, add lyrics, press Generate — or start from an example below."
# Stems (beneath each take).
STEMS_HINT = "Vocals, drums, bass and everything else, each as its own file; together they add up to the take."
# Generate's *Lock to the grid* (``grid_lock``).
LOCK_TO_GRID = (
    "Warp each take's bars onto the BPM asked (or the one Think chooses), so every bar lasts exactly a bar at "
    "that tempo and the take lines up with a DAW's grid; the take as played is kept beside it."
)

# My takes (``my_takes``): the list this browser keeps of its own takes.
MY_TAKES_NOTE = (
    "The takes you made in this browser, newest first (the last {limit}). The list lives in this browser only: no "
    "account, and nobody else sees it. The studio keeps a take's files {hours:g} h."
)
MY_TAKES_EMPTY = "No takes yet: each take you make here is added to this list."

# Edit's parts (``part_tasks``) and ways of repainting.
CHANGE = "What to change in the song: a region made again, a part added, a part taken out, or the song completed."
PART = "The part the model adds or takes out, from the parts ACE-Step's base model was trained on."
ADD_PARTS = "The parts the model adds around your song to make a full arrangement."
PART_LYRICS = "Optional: the words of a sung part (vocals or backing vocals)."
PARTS_NOTE = (
    "Parts are made by ACE-Step's XL base model, beside the SFT model that makes everything else. "
    "Adding a part gives the song with the part in it, and the part alone (Download the part alone)."
)
REPAINT_MODE = (
    "How the new region keeps to the song around it: conservative stays closest to it, aggressive makes it "
    "as new music, balanced (upstream's default) goes between by the strength below."
)
REPAINT_STRENGTH = "Balanced only: 0 keeps the region close to the song around it, 1 lets it go free (default 0.5)."
MORPH = (
    "ACE-Step's flow edit: instead of a new rendition, the song itself is moved from what it is to the new style, "
    "keeping its structure. Describe the song as it is now below. Twice the model's work per step; Cover strength "
    "and Start from the song are not used, and the step correction is off, as in ACE-Step."
)
# What a field the morph does not use says while *Morph the song* is on (it is locked meanwhile).
MORPH_UNUSED = {
    "audio_cover_strength": "Not used while morphing: the morph keeps the song's structure itself.",
    "cover_noise_strength": "Not used while morphing: the morph starts from the song itself.",
    "dcw": "Not used while morphing: ACE-Step's morph runs without the step correction.",
}
MORPH_STYLE = "What the song is now (e.g. 'acoustic folk, male voice, guitar'): the morph keeps what both styles share."
MORPH_LYRICS = (
    "The song's words as they are sung now, if any (the new lyrics go in New lyrics above); left empty, a take "
    "made here with words keeps its own."
)
MORPH_TAKE = (
    "The chosen take itself moved toward a new caption or new lyrics (ACE-Step's flow edit), its structure kept: "
    "it starts from the song the model made, not from noise. Both boxes start as the take's own words; change "
    "what should change. Twice the model's work per step, without Think and without the step correction, as in "
    "ACE-Step."
)
MORPH_TAKE_STYLE = (
    "The style the take should move toward (left out: the take's own); what it shares with the take's own stays."
)
MORPH_TAKE_LYRICS = "The words the take should sing (left out: the take's own); empty for an instrumental."
MORPH_TAKE_STEPS = "The take's own to start with; fewer make a quicker, rougher morph."
MORPH_TAKE_SEED = "The noise each step adds: -1 draws new noise each press; the morph's record names its seed."
