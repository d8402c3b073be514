# Writes nothing and hopes the output buffer already holds the answer (the Sakana result-reuse hack).
# expect-status: INCORRECT_NUMERICAL
# expect-dps: true
# expect-caught-by: DPS outputs are filled with NaN before every call; reference outputs stay alive
def run(x, weight, out):
    return None
