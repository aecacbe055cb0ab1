"""Every help and info string the studio shows, written for musicians. One source of truth."""

import audio
import plan_format

# The facts the words name, read from the rooms that hold them.
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
PLANNED = "Planned in {seconds:.1f} s: {summary}."
# A result's time (``results.time_text``): a loop's bars, else the metre asked or planned; each take's tempo follows.
LOOP_SAID = "Loop: {bars} bars at {bpm} BPM, {metre} ({seconds:.1f} s)"
LOOP_BY_THINK = ", as Think planned it"
TAKE_METRE = "In {metre}"
# Think's progress, as the planner works (``generation``).
PLAN_THINKING = "Thinking: the planner works out the song's plan ({done} steps so far)…"
PLAN_CHOSEN = "Think chose {length} for the song; now it sketches the song…"
PLAN_SKETCHING = "Sketching the song{which}: {done} of {total}{chosen}"  # its melody and structure, for the music model
PLAN_SKETCHING_TAKES = " for {takes} takes"
PLAN_CHOSE = " · Think chose {length}"
# Words a model wrote past what the music model reads (``text_limits.fit``: Think's, *Write it*'s).
CAPTION_FIT = (
    " Think's caption ran to {n} tokens, past the {most} the model reads of one: it was cut at its last {kept}."
)
CAPTION_YOURS = " Think's caption ran to {n} tokens, past the {most} the model reads of one: your own caption was used."
WRITTEN_FIT = "The planner's {what} ran to {written_tokens} tokens, past the {most} the music model reads: cut to fit."
PLAN_SKIPPED = "Think was skipped ({reason}); the song was made from your caption and lyrics alone."
DURATION = f"Length of the song in seconds, from {_SHORTEST} to {_MINUTES}. Longer songs take longer to make."
BPM = f"Tempo in beats per minute ({_TEMPI}). 0 = auto: the model picks a tempo that suits the caption."
BPM_DETECTED = (
    "Tempo of the song, filled in from the upload (0 = let the model choose). If it sounds twice or "
    "half as fast as the song feels, use ½ or 2×."
)
NO_STEADY_BEAT = "no steady beat found, so BPM and time signature stay on auto"
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
STEP = "Step {step}/{total}"  # a render's progress (``generation``)
TAKES = "How many variations to make in one go (1–4); each gets its own seed."
LOOP = "A loop of this many bars at the BPM and time signature (auto: Think's, else 4/4), seamless round its end."
# Generate's *Loop* (``loops``, ``checks.check_loop_bars``): the page while it is on, its progress, its refusals.
LOOP_DURATION = "Not used while Loop is on: the loop's bars at its BPM and time signature set its length."
LOOP_LENGTH = "A loop of {bars} bars of {metre} at {bpm} BPM: {seconds:.1f} s. Not used while Loop is on: its bars set the length."
LOOP_CLOSING = "Closing the loop: step {step}/{total}"  # its seam's repaint, after the song's STEP
LOOP_BARS_CHOICE = "A loop is {choices} bars long (you asked for {given}); choose one of those, or Off for a song."
LOOP_NEEDS_BPM = (
    "A loop is counted in bars, so it needs its tempo before it is made: set a BPM, turn Think on to choose one, "
    "or turn Loop off."
)
LOOP_TOO_LONG = (
    "{bars} bars of {metre} at {bpm} BPM last {seconds:.0f} s, longer than the longest song here "
    f"({_MINUTES}): choose fewer bars or a faster tempo."
)
LOOP_AUTO_LENGTH = "A loop's length is its bars at its tempo: turn Length: auto off (or Loop off)."
LOOP_FADES = "A loop plays round without a break, so it takes no fades: set both fades to 0."
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
STOPPED_AFTER_LAST_STEP = "Stopped after the last step, before the take was saved. Nothing was saved."
ALREADY_SAVED = "Stop came after the take was finished: it is saved, and shown here."
RESULT_EMPTY = "Nothing here yet. Your takes appear here, each with the seed that makes it again."
COVER_CAPTION = "The style of the new version, e.g. “acoustic folk, fingerpicked guitar, soft male vocals”."
COVER_STRENGTH = (
    "Audio cover strength, as in ACE-Step: the share of the steps that follow the original's melody and "
    "structure. 1 = it follows the original all the way (same melody and structure, new sound); "
    "0 = a fresh song from your caption; in between, the original sets the structure and your style "
    "finishes it."
)
COVER_LYRICS = "Leave empty to keep the song's words; write new lyrics to have them sung instead."
REFERENCE = (
    "Optional: a recording whose voice or instrument colour (timbre) the take should borrow; "
    "ACE-Step reads three 10 s stretches of it, one from each third (a short one is repeated), "
    "chosen by the seed; for a take of this studio's (*Use this voice* under a take, or in My takes), "
    "the three where its voice sings."
)
# A take's voice as Generate's timbre reference (``voice``, ``voice_row``).
VOICE_USED = "This take's voice is now Generate's timbre reference: write a new caption and lyrics, and make a song."
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
DCW = (
    "ACE-Step's step correction (DCW): after each step it nudges the music's coarse and fine detail away "
    "from the model's blurry guess of the end result. As in ACE-Step itself it starts on for Turbo models "
    "only: on SFT and Base it was heard to turn songs into noise. Your choice here is always kept."
)
# The seed line of a repaint of a take asked with the take's own seed (``preparing.from_own_latents``).
SEED_REDRAWN = " (not {asked}: that is the song's own seed, and a repaint of a take draws new noise, as ACE-Step does)"
COVER_NOISE = (
    "Start from the song itself instead of pure noise: 0 starts from noise (ACE-Step's default), "
    "higher values start closer to the original, so the cover keeps more of its sound "
    "(ACE-Step's own page uses 0.2). ACE-Step's users report near-silence above 0 with the XL SFT and "
    "Base models (its issue #1329, open): listen, and go back to 0 if the cover comes out silent."
)
EXTEND_SECONDS = f"How much new music to add at the end (5–240 s). The song stays at most {_MINUTES} long."
EXTEND_CAPTION = "Describe how the song should go on. Your original part is kept exactly as it is."
REGION = "The stretch to regenerate, in seconds from the start (at least 1 s). Listen to the song above to pick it."
EDIT_LYRICS = "The words to sing in the region. Everything outside the region stays exactly as it was."
SNAP, SECTION_CHOOSE = "Snap the drag to bar lines", "{name} ({span}): click to regenerate this section"
# Edit by the words (``edit_lines``): the song's sung lines, chosen to set the region.
EDIT_WORDS = (
    "Tick the lines to change, or pick a whole section: the region covers them, from a breath before the first "
    "to a breath before the next line, moved to the nearest quiet moment. Their words appear in New words for "
    "the region: rewrite them there; the rest of the song's words stay as they are."
)
EDIT_WORDS_NOTE = (
    "{which} chosen: the region is {start:g}–{end:g} s. The words are below, in New words for the region, to rewrite."
)
EDIT_SECTION = "Tick every line of one section at once."
WORDS_UNKNOWN = "The studio does not know when this song's words are sung: choosing lines or a section needs a take the studio made with lyrics (sent here with Send to, or from My takes), as it was written. Set the region by its seconds instead."
NO_SUCH_LINE = "The song has {count} sung lines; there is no line {given}. Choose lines between 1 and {count}."
LINES_NOT_NUMBERS = "“{given}” is not a line number. Give line numbers such as 3, 4 or 3-5."
LINES_TOO_MANY = "That is more line numbers than a song can have lines ({most} at most). Give the first and the last, such as 3-20: a choice covers every line between them."
NO_SUCH_SECTION = "The song has no section “{given}”. Its sections are: {names}."
SECTION_TWICE = "More than one section is called “{given}” (sections {numbers}): give the section's number instead."
SECTION_UNSUNG = "The section “{given}” has no sung lines to change. Choose another section or lines."
LINES_TOO_SHORT = "{which} last only {seconds:.2f} s ({start:g}–{end:g} s); Edit changes at least {least:g} s at a time. Choose more lines, or set the region by its seconds."
LINES_WITH_PART = "Lines and sections choose a region of the song; a part changes the whole song. Choose What to change: a region, or leave the lines empty."
# Edit and Extend by the bar (``edit_bars``; the bar lines: ``song_map``). A bar is one measure of the song's metre.
EDIT_BARS = "Bars to change, counted from 1 as the studio hears them: 9-16, or 9. The region runs from the start of the first to the start of the bar after the last (the song's end after its last bar). Leave empty to set the region by its seconds."
EXTEND_BARS = "Whole bars to add at the song's tempo (such as 8), in place of the seconds: the new part ends on a bar line, so a bar after it would start on the beat. Leave empty to add the seconds above."
BARS_NOT_NUMBERS = "“{given}” is not a choice of bars: Bars takes bar numbers from 1, such as 9-16 or 9. (A section by its name: A whole section, under Choose by the words.)"
BARS_NO_GRID = "The studio hears no steady beat in this song, so it has no bars to count. Set the region by its seconds (Extend: the seconds to add) instead."
NO_SUCH_BAR = "The song has {count} bars; there is no bar {given}. Choose bars between 1 and {count}."
BARS_WITH_LINES = "Choose the region one way: by bars, or by lines or a section, not both. Leave one of them empty."
BARS_WITH_REGION = "Choose the region by bars or by seconds, not both: {which} run {start:g}–{end:g} s, but Region start and end say {typed}. Clear the bars, or set the region to {start:g}–{end:g} s."
BARS_WITH_PART = "Bars choose a region of the song; a part changes the whole song. Choose What to change: a region, or leave the bars empty."
BARS_TOO_SHORT = "{which} last only {seconds:.2f} s; Edit changes at least {least:g} s at a time. Choose more bars."
EXTEND_BARS_NOT_COUNT = "“{given}” is not a number of bars to add. Give a whole number from 1, such as 8."
EXTEND_BARS_RANGE = "{bars} bars at this song's tempo add {seconds:.1f} s; Extend adds {low:g}–{high:g} s at a time, and the song stays at most {most}. Choose fewer or more bars, or add seconds instead."
# Extend past the longest song: where less than Extend's least is left, it cannot add to the song at all.
EXTEND_TOO_LONG = (
    "The song is {song:.0f} s; adding {more:g} s would make it longer than {most}. Add at most {room:d} s."
)
EXTEND_NO_ROOM = (
    "The song is {song:.1f} s, at or within {least:g} s of the longest the studio makes ({most}), and Extend adds "
    "at least {least:g} s: there is no room to extend it. Edit a region of it instead, or extend a shorter song."
)
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
WRITE_IT_OFF = "Write it needs ACE-Step's planner, which is off on this studio (ACE_STUDIO_PLANNER_MODEL=none)."
WRITE_IT_STOPPED = "Stopped while the planner wrote. Nothing was changed."
WRITE_IT_UNUSABLE = "The planner could not write a song from this idea ({reason}). Nothing was changed; try again."
DESCRIBE_OFF = "Describe needs ACE-Step's planner, which is off on this studio (ACE_STUDIO_PLANNER_MODEL=none)."
DESCRIBE_TOO_SHORT = (
    "This song is {length} long; Describe listens to at least {least:g} s of a song. Upload a longer clip."
)
DESCRIBE_STOPPED = "Stopped while the planner listened. Nothing was changed."
DESCRIBE_UNUSABLE = "The planner could not describe this song ({reason}). Nothing was changed; try again."
DESCRIBE_PLANNER_MISSING = "The planner could not be loaded: {error}"
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
LORA_READ = "✓ {name} is a LoRA the studio can read; it applies to this request only and is removed right after."
LORA_SCALE = "How strongly the LoRA colours the result: 0 = not at all, 1 = as trained, up to 2 to exaggerate it."
TAGLINE = "Describe a style, add lyrics, press Generate — or start from an example below."
# Stems (beneath each take).
# Take to send (a result's take, for Send to, Use these settings, Variations, the morph, stems).
TAKE_NUMBER = "Take to send must be a whole number from 1 to {count} (you asked for {given})."
TAKE_ONLY_ONE = "This result has one take: send take 1 (you asked for {given})."
STEMS_HINT = "Vocals, drums, bass and everything else, each as its own file; together they add up to the take."
STEMS_MISSING = (
    "Stems need the Demucs separation model (htdemucs_ft), and this studio does not have it: {error}.\n\n"
    "What to do: whoever runs the studio downloads it once with "
    "hf download adefossez/HTDemucs-ft (on a Space, README's preload_from_hub does it), "
    "or points ACE_STUDIO_STEMS_MODEL at a folder that holds it; on tiny random models, "
    "python tools/random_models.py DIR writes one and names it in the command it prints."
)
STEMS_STOPPED = "Stopped while splitting into stems. Nothing was saved; the take itself is kept."
STEMS_NO_TAKE = "There is no take to split yet — make one first."
STEMS_GONE = "Take {n} is no longer kept by the studio; make it again to split it."
STEMS_FAILED = "Splitting into stems failed partway ({error}). Nothing was saved; try again."
LOOP_OFF_TEMPO = (
    "The loop came out at {bpm:g} BPM, too far from {asked} BPM to be put in time: one of its bars would be "
    "stretched {pct:.1f} % (a loop is stretched at most {most:g} %). Try another seed, or set the BPM nearer "
    "what the style plays."
)
# Generate's *Lock to the grid* (``grid_lock``).
LOCK_TO_GRID = (
    "Warp each take's bars onto the BPM asked (or the one Think chooses), so every bar lasts exactly a bar at "
    "that tempo and the take lines up with a DAW's grid; the take as played is kept beside it."
)
LOCK_NEEDS_BPM = "Lock to the grid needs a tempo to lock to: set the BPM, or turn Think on to choose one."
LOCK_NO_BPM = "kept as played: no tempo was asked or planned"
LOCK_NO_BEAT = "kept as played: no steady beat was heard in it"
LOCK_BUSY = "kept as played: the studio was measuring as many songs as it may"
LOCK_TOO_FAR = "kept as played: a bar would be stretched {pct:.1f} % (at most {most:g} %)"
UNLOCKED_LINK = "Download as played"
# A take's tempo as played, beside its label (``song_map.Tempo.said``; ``player``).
TEMPO_IN_TIME = "In time: {bpm:g} BPM, {steady}"
TEMPO_OFF = "Played at {bpm:g} BPM, {pct} % {way}, {steady}"
TEMPO_HEARD = "Plays at {bpm:g} BPM, {steady}"
TEMPO_SLOW, TEMPO_FAST = "slow", "fast"
TEMPO_HELP = "The tempo this take was played at, measured from its beats, against the BPM asked; steady: its bars keep one length."
TEMPO_STEADY = "steady"
TEMPO_WANDERS = "its bars wander up to {pct:g} %"
LYRIC_BADGE = "· words sung clearly: {score} of 1"  # beside "Take 1" (``player``); LYRIC_SCORE on hover
LYRIC_SCORE = (
    "Lyric alignment, 0 to 1 (ACE-Step's own score): how clearly and in order this take sings its words. "
    "Pick the take with the higher number when the words matter."
)

# My takes (my_takes.py): the list this browser keeps of its own takes.
MY_TAKES_NOTE = (
    "The takes you made in this browser, newest first (the last {limit}). The list lives in this browser only: no "
    "account, and nobody else sees it. The studio keeps a take's files {hours:g} h."
)
MY_TAKES_EMPTY = "No takes yet: each take you make here is added to this list."
MY_TAKE_CLEANED = (
    "The studio no longer keeps this take's files (it keeps them {hours:g} h). Use these settings brings back its "
    "settings and seed (for a variation, those of the take it varied)."
)
SETTINGS_OF_A_VARIATION = (
    "This take is a variation (of take {take}, amount {amount}, new noise seed {seed}); Generate has no field for "
    "its noise, so these are the settings of the take it varied. To make this variation again, vary that take "
    "with the same amount and seed, or send this record to /variations at amount 0."
)
MY_TAKE_GONE = (
    "This take is no longer kept by the studio (it keeps takes {hours:g} h); use its settings to make it again."
)
MY_TAKE_NONE = "Pick a take from My takes first."
MY_TAKE_NO_SETTINGS = (
    "This take's settings were too long to keep in this browser; bring them back from the .json saved beside it."
)

# The heading of a refusal's toast (Gradio's says "Error"): what was pressed, by the event function's name
# (``checks.expected_errors``: the first it starts with); a refusal with a title of its own keeps it.
TITLES = (("write_song", "Write it"), ("write_into_generate", "Write it"), ("write_lyrics", "Write lyrics"),
          ("use_in_generate", "Use in Generate"), ("stems", "Split into stems"), ("describe", "Describe"),
          ("variations", "Variations"), ("send_to_cover", "Send to Cover"), ("send_to_extend", "Send to Extend"),
          ("send_to_edit", "Send to Edit"), ("send_my_take_to_cover", "Send to Cover"),
          ("send_my_take_to_extend", "Send to Extend"), ("send_my_take_to_edit", "Send to Edit"),
          ("settings_from", "Use these settings"), ("use_settings", "Use these settings"), ("keep", "My takes"),
          ("kept", "My takes"), ("generate", "Generate"), ("cover", "Cover"), ("extend", "Extend"), ("edit", "Edit"))  # fmt: skip
TITLE = "ACE Music Studio"  # an event not named above

# Edit's parts (``part_tasks``) and ways of repainting.
CHANGE = "What to change in the song: a region made again, a part added, a part taken out, or the song completed."
PART = "The part the model adds or takes out, from the parts ACE-Step's base model was trained on."
ADD_PARTS = "The parts the model adds around your song to make a full arrangement."
PART_LYRICS = "Optional: the words of a sung part (vocals or backing vocals)."
PARTS_NOTE = (
    "Parts are made by ACE-Step's XL base model, beside the SFT model that makes everything else. "
    "Adding a part gives the song with the part in it, and the part alone (Download the part alone)."
)
PARTS_MISSING = (
    "⚠️ Adding, taking out and completing parts need ACE-Step's XL base model ({source}), which this studio "
    "does not have: {why}. A region can still be made again."
)
PARTS_NO_LORA = (
    "A LoRA is made for the SFT model, and parts are made by the base model, which it does not fit. "
    "Remove the LoRA (and the LoRA preset) to add, take out or complete parts."
)
PARTS_OFFLOADED = (
    "Parts need the base model on the accelerator beside the SFT model, and this studio runs its model "
    "offloaded to fit the card (ACE_STUDIO_OFFLOAD). A region can still be made again."
)
REPAINT_MODE = (
    "How the new region keeps to the song around it: conservative stays closest to it, aggressive makes it "
    "as new music, balanced (upstream's default) goes between by the strength below."
)
REPAINT_STRENGTH = "Balanced only: 0 keeps the region close to the song around it, 1 lets it go free (default 0.5)."
PART_LINK = "Download the part alone"
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
MORPH_NO_TAKE = "There is no take yet: make one in Generate first, then morph it."
MORPH_GONE = "Take {n} is no longer kept by the studio; make it again."
MORPH_NOT_GENERATE = (
    "Only a take made in Generate (or a morph of one) can be morphed here. Cover's Morph the song moves any song."
)
MORPH_UNREADABLE = "This take's record cannot be read as a Generate take's."
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
# A text the music model's text encoder would cut short (``text_limits``), by field.
TOO_MANY_TOKENS = {
    "lyrics": "The lyrics are {n} tokens long; the model reads at most {most}. Shorten them.",
    "morph_lyrics": "The song's own words are {n} tokens long; the model reads at most {most}. Shorten them.",
    "prompt": "The caption is {n} tokens long; the model reads at most {most} of a caption. Shorten it.",
    "morph_prompt": "The song's own style is {n} tokens long; the model reads at most {most} of it. Shorten it.",
}
