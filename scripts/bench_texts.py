"""The utterances the benchmark measures and pictures (scripts/benchmark.py, scripts/mouth_views.py): one place,
so neither script imports the other."""

TEXTS = {
    "short (~2.5 s)": "Hello there! It is good to see you again.",
    "long (~20 s)": (
        "Welcome to the realtime avatar demo. Every word you hear was synthesised on this computer, "
        "and every frame you see was drawn from a single photograph. The lips follow the sounds: they close "
        "for m, b and p, round for o and u, and spread for e. The eyes blink now and then, and the head moves "
        "a little, the way people do when they speak. Nothing was downloaded, and no graphics card was used."
    ),
}
