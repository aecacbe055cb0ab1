"""What a result says, for musicians: a take's result line and seed line, its player's badges and links, the
plan Think made (or why it was skipped), a take kept as played, an upload as heard, what Describe heard, and
the notes a take's record and file carry (its finish, its kept part, its latents, a loop's turns). A field's help is ``tooltips``; a refusal,
``refusals``; what a run says as it works, ``progress_words``."""

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
# *Write it*'s note (``songwriter.note``) where the planner wrote no words.
WROTE_NO_WORDS = "The planner wrote no words this time: try another seed, or write them yourself."
# Words a model wrote past what the music model reads (``text_limits.fit``: Think's, *Write it*'s).
CAPTION_FIT = (
    " Think's caption ran to {n} tokens, past the {most} the model reads of one: it was cut at its last {kept}."
)
CAPTION_YOURS = " Think's caption ran to {n} tokens, past the {most} the model reads of one: your own caption was used."
WRITTEN_FIT = "The planner's {what} ran to {written_tokens} tokens, past the {most} the music model reads: cut to fit."
# A result's seed line (``results.seeds_text``): each take's seed, a variation's part of it, the run's time and
# device; the length Think chose, after its plan's line.
SEEDS = "Seeds — {seeds} · made in {seconds:.1f} s on {device}"
SEED_VARIED = " (take {take} varied {amount:g}, new noise {seed})"
THINK_CHOSE = " Think chose a length of {clock} ({seconds} s)."
# The seed line of a repaint of a take asked with the take's own seed (``preparing.from_own_latents``).
SEED_REDRAWN = " (not {asked}: that is the song's own seed, and a repaint of a take draws new noise, as ACE-Step does)"
# An upload as the studio hears it (``analysis``); its header's facts and a failed measure (``form_fields``).
SOURCE_SAID = "Source: {minutes}:{seconds:04.1f} long · {rate} Hz · {channels} channel(s)"
NOT_MEASURED = "{line} · (tempo and key could not be measured)"
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
# A take's file's comment tag (``takes``).
TAKE_COMMENT = "{mode}, take {take} of {of}, seed {seed}; made with {studio}"
# A loop's record where several turns were made as one song (``loops.record``): how, and which turn was kept.
LOOP_MADE = (
    "{turns} turns of the loop made as one {seconds:.1f} s song (the shortest song is {shortest:g} s); the middle "
    "turn kept ({which}) and its wrap repainted with the loop's turns either side"
)
LOOP_TURN = "turn {n} of {turns}"
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
# the song went through the VAE. An upload's words are also a changed take's (no take's existence is told).
LATENTS_OWN = "the take's own latents ({name})"
LATENTS_UPLOAD = "encoded by the VAE: the studio keeps no latents of this very file"
LATENTS_NONE_KEPT = "encoded by the VAE: a loop, or a take locked to the grid, keeps no latents"
LATENTS_GONE = "encoded by the VAE: its take's latents are gone"
LATENTS_MISFIT = "encoded by the VAE: its take's latents {why}"
LATENTS_UNREADABLE = "encoded by the VAE: its take's latents could not be read ({kind})"
LATENTS_NOT_THIS_MODELS = "are not this model's ({have} channels; it reads {width})"  # a misfit's why
LATENTS_TOO_SHORT = "are not as long as the song ({have} frames; it takes {frames})"
LATENTS_NOT_A_TAKES = "are not a take's"
