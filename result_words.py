"""What a result says, for musicians: a take's result line and seed line, its player's badges and links, the
plan Think made, a take kept as played, an upload as heard. A field's help is ``tooltips``; a refusal,
``refusals``; what a run says as it works, ``progress_words``."""

# The result line before any take (``widgets``), and a plan's line (``results``, ``handlers``).
RESULT_EMPTY = "Nothing here yet. Your takes appear here, each with the seed that makes it again."
PLANNED = "Planned in {seconds:.1f} s: {summary}."
PLAN_SKIPPED = "Think was skipped ({reason}); the song was made from your caption and lyrics alone."
# A result's time (``results.time_text``): a loop's bars, else the metre: "In" only where every take's bars were
# heard, else as it was asked or planned (a take of noise is in no metre); each take's tempo follows.
LOOP_SAID = "Loop: {bars} bars at {bpm} BPM, {metre} ({seconds:.1f} s)"
LOOP_BY_THINK = ", as Think planned it"
TAKE_METRE = "In {metre}"
METRE_ASKED = "Asked for {metre}"
METRE_PLANNED = "Think planned {metre}"
# Words a model wrote past what the music model reads (``text_limits.fit``: Think's, *Write it*'s).
CAPTION_FIT = (
    " Think's caption ran to {n} tokens, past the {most} the model reads of one: it was cut at its last {kept}."
)
CAPTION_YOURS = " Think's caption ran to {n} tokens, past the {most} the model reads of one: your own caption was used."
WRITTEN_FIT = "The planner's {what} ran to {written_tokens} tokens, past the {most} the music model reads: cut to fit."
# The seed line of a repaint of a take asked with the take's own seed (``preparing.from_own_latents``).
SEED_REDRAWN = " (not {asked}: that is the song's own seed, and a repaint of a take draws new noise, as ACE-Step does)"
# An upload as the studio hears it (``analysis``).
# An upload counted two ways (a half-time feel): the BPM field takes the first; the musician may type the other.
FELT_AS = "{tempo}, felt as {felt:g}"
NO_STEADY_BEAT = "no steady beat found, so BPM and time signature stay on auto"
# The upload's map in one line, and how sure it is (``edit_bars.map_said``): steady, wandering, or no beat heard.
MAP_HEARD = "{bars} bars: ≈ {bpm:g} BPM in {metre}, {steady}"
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
