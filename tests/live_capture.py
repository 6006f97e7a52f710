"""Records a clip played into a PulseAudio null sink through MicrophoneSource (used by test_live_pulse).

    python live_capture.py MODEL CLIP OUT.npz
"""
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from ser_lib.inference import live
from ser_lib.inference import Predictor, StreamingPredictor


def main() -> None:
    model, clip, out = sys.argv[1:4]
    duration = sf.info(clip).duration
    predictor = Predictor.from_checkpoint(model, device="cpu")
    mic = live.MicrophoneSource("pulse", sample_rate=16000, block_seconds=0.05)
    stream = StreamingPredictor(predictor, mic.sample_rate, adapt=False)  # comparable with offline predictions
    captured, results = [], []
    with mic:
        time.sleep(0.3)
        player = subprocess.Popen(["paplay", "--device=ser_sink", clip])
        deadline = time.time() + duration + 1.5
        for block in mic.blocks():
            captured.append(block)
            results += stream.feed(block)
            if time.time() > deadline and player.poll() is not None:
                break
    n = len(predictor.labels)
    np.savez(out, captured=np.concatenate(captured), sample_rate=mic.sample_rate, dropped=mic.dropped,
             starts=[r.start for r in results], ends=[r.end for r in results],
             speech=[r.speech for r in results],
             probs=np.array([r.probs if r.speech else np.full(n, np.nan) for r in results]),
             player_rc=player.returncode)


if __name__ == "__main__":
    main()
