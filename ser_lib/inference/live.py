"""Live emotion recognition: audio sources, views, and the notebook widget.

Sources share one interface (``sample_rate``, ``blocks()``, ``stop()``, context manager):

* :class:`MicrophoneSource` - a ``sounddevice`` input stream whose callback puts blocks into a
  bounded queue; if inference falls behind, the queue overflows and blocks are dropped and reported.
* :class:`FileSource` - replays a file block by block, in real time or as fast as possible.

Views show a stream of :class:`~ser_lib.inference.streaming.StreamResult` as
:func:`~ser_lib.inference.streaming.run_stream` feeds them: :class:`TextView` (terminal),
:class:`PlotView` (matplotlib window with probability bars and a scrolling timeline; it can also
write each frame to PNG) and :class:`LiveDemo`, the ipywidgets panel of notebook 06.

``sounddevice`` is imported only when a microphone is used, with a message that says how to
install PortAudio when it is missing.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data import audio
from ..errors import DeviceError
from ..reports import plots
from . import vad
from .ensemble import Ensemble
from .predictor import Predictor
from .streaming import (
    NO_SPEECH,
    StreamingPredictor,
    StreamResult,
    StreamSettings,
    run_stream,
)

log = logging.getLogger(__name__)

PORTAUDIO_HELP = (
    "PortAudio, the audio library behind sounddevice, is not installed. Install it "
    "(Debian/Ubuntu: sudo apt-get install libportaudio2; Fedora: sudo dnf install portaudio; "
    "macOS: brew install portaudio; conda: conda install -c conda-forge portaudio), "
    "or use a file: infer --input FILE"
)


def import_sounddevice():
    """``sounddevice``, or :class:`DeviceError` with install instructions."""
    try:
        import sounddevice
    except OSError as err:  # raised at import when the PortAudio library is missing
        raise DeviceError(f"{PORTAUDIO_HELP} ({err})") from None
    except ImportError:
        raise DeviceError("the sounddevice package is missing: pip install sounddevice") from None
    return sounddevice


def input_devices() -> list[dict]:
    """Devices with input channels: index, name, channels, default sample rate, default flag."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
    except sd.PortAudioError as err:
        raise DeviceError(f"cannot list audio devices ({err})") from None
    return [{"index": i, "name": d["name"], "channels": d["max_input_channels"],
             "sample_rate": int(d["default_samplerate"]), "default": i == default}
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def format_devices(devices: list[dict]) -> str:
    if not devices:
        return "no input devices found (is a microphone connected, and may this program use it?)"
    return "\n".join(f"{'*' if d['default'] else ' '} {d['index']:3d}  {d['name']}  ({d['channels']} in, "
                     f"{d['sample_rate']} Hz)" for d in devices)


class MicrophoneSource:
    """Microphone blocks through a ``sounddevice.InputStream`` callback and a bounded queue.

    ``device`` is an index, a (part of a) name, or ``None`` for the system default. Blocks that
    arrive while the queue is full are dropped and counted in ``dropped``; a warning says that
    inference is too slow for the hop.
    """

    def __init__(self, device: int | str | None = None, sample_rate: int | None = None,
                 block_seconds: float = 0.1, max_queue: int = 50):
        self.sd = import_sounddevice()
        self.device = _parse_device(device)
        try:
            info = self.sd.query_devices(self.device, "input")
        except (ValueError, self.sd.PortAudioError) as err:
            raise DeviceError(f"no input device {device!r} ({err}). Input devices:\n"
                              f"{format_devices(input_devices())}") from None
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.block = max(1, int(block_seconds * self.sample_rate))
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.status_messages: list[str] = []
        self._stream = None
        self._stopped = threading.Event()

    def _callback(self, indata, frames, time_info, status) -> None:
        if status:
            self.status_messages.append(str(status))
        try:
            self.queue.put_nowait(indata.mean(axis=1).astype(np.float32))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 50 == 0:
                log.warning("inference is too slow for the audio: %d blocks dropped so far; use a longer "
                            "--hop, a smaller model, or --optimize int8", self.dropped)

    def start(self) -> "MicrophoneSource":
        try:
            self._stream = self.sd.InputStream(device=self.device, channels=1, samplerate=self.sample_rate,
                                               blocksize=self.block, dtype="float32", callback=self._callback)
            self._stream.start()
        except self.sd.PortAudioError as err:
            raise DeviceError(f"cannot open the microphone ({err}). Check that it is connected and that this "
                              f"program may use it (macOS: System Settings > Privacy > Microphone; Linux: "
                              f"the user is in the 'audio' group or PulseAudio/PipeWire runs)") from None
        self._stopped.clear()
        return self

    def blocks(self) -> Iterator[np.ndarray]:
        if self._stream is None:
            self.start()
        while not self._stopped.is_set():
            try:
                yield self.queue.get(timeout=0.2)
            except queue.Empty:
                continue

    def stop(self) -> None:
        self._stopped.set()
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def __enter__(self) -> "MicrophoneSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _parse_device(device: int | str | None):
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device


class FileSource:
    """Replays an audio file in blocks: paced like a microphone (``realtime=True``) or at full speed."""

    def __init__(self, path: str | Path, block_seconds: float = 0.1, realtime: bool = True, loop: bool = False):
        self.path = Path(path)
        self.wave = audio.load(self.path, sr=None, allow_silent=True)
        self.sample_rate = audio.file_rate(self.path)
        self.block = max(1, int(block_seconds * self.sample_rate))
        self.realtime = realtime
        self.loop = loop
        self._stopped = threading.Event()

    def start(self) -> "FileSource":
        self._stopped.clear()
        return self

    def blocks(self) -> Iterator[np.ndarray]:
        self._stopped.clear()
        started = time.perf_counter()
        sent = 0
        while not self._stopped.is_set():
            for i in range(0, len(self.wave), self.block):
                if self._stopped.is_set():
                    return
                block = self.wave[i:i + self.block]
                if self.realtime:
                    wait = started + sent / self.sample_rate - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                sent += len(block)
                yield block
            if not self.loop:
                return

    def stop(self) -> None:
        self._stopped.set()

    def __enter__(self) -> "FileSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------
# Views
# ----------------------------------------------------------------------------------------------
class TextView:
    """One line per hop in the terminal: time, the smoothed top emotion and a bar per emotion."""

    def __init__(self, stream=None):
        self.stream = stream

    def update(self, result: StreamResult) -> None:
        if not result.speech:
            line = f"{result.time:7.1f}s  {NO_SPEECH:<10} ({result.level_db:5.1f} dBFS)"
        else:
            bars = "  ".join(f"{label[:4]} {'█' * int(round(p * 8)):<8}"
                             for label, p in zip(result.labels, result.smoothed))
            line = (f"{result.time:7.1f}s  {result.label:<10} {result.smoothed.max():.2f}  {bars}  "
                    f"[{result.latency_ms:.0f} ms]")
        print(line, file=self.stream or sys.stdout, flush=True)

    def close(self) -> None:
        pass


def has_display() -> bool:
    """Whether an interactive matplotlib window can open."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class PlotView:
    """Probability bars and a scrolling timeline of the top emotion in a matplotlib figure.

    With ``interactive=False`` (no display) nothing is shown; ``save_frames`` writes every frame as
    ``frame_00001.png`` there, which is also how the view is tested.
    """

    def __init__(self, labels: list[str], history_seconds: float = 30.0, interactive: bool | None = None,
                 save_frames: str | Path | None = None):
        import matplotlib

        self.interactive = has_display() if interactive is None else interactive
        if not self.interactive:
            matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        self.plt = plt
        self.labels = labels
        self.history_seconds = history_seconds
        self.save_frames = Path(save_frames) if save_frames else None
        if self.save_frames:
            self.save_frames.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self.timeline: deque = deque()
        plots.set_style()
        self.fig, (self.ax_bars, self.ax_time) = plt.subplots(
            2, 1, figsize=(8, 6), gridspec_kw={"height_ratios": [3, 2]})
        self.bars = self.ax_bars.barh(labels, [0] * len(labels), color=plots.colours(labels))
        self.ax_bars.set_xlim(0, 1)
        self.ax_bars.invert_yaxis()
        self.ax_bars.set_xlabel("probability (smoothed)")
        self.title = self.ax_bars.set_title("listening...")
        self.ax_time.set_yticks(range(len(labels)), labels)
        self.ax_time.set_ylim(-0.5, len(labels) - 0.5)
        self.ax_time.invert_yaxis()
        self.ax_time.set_xlabel("time (s)")
        self.scatter = self.ax_time.scatter([], [], s=60, marker="s")
        self.fig.tight_layout()
        if self.interactive:
            plt.ion()
            plt.show(block=False)

    def update(self, result: StreamResult) -> None:
        values = result.smoothed if result.smoothed is not None else np.zeros(len(self.labels))
        for bar, value in zip(self.bars, values):
            bar.set_width(float(value))
        if result.speech:
            self.title.set_text(f"{result.label}  ({values.max():.0%})   latency {result.latency_ms:.0f} ms")
            self.timeline.append((result.time, self.labels.index(result.label)))
        else:
            self.title.set_text(f"{NO_SPEECH}  ({result.level_db:.0f} dBFS)")
        while self.timeline and self.timeline[0][0] < result.time - self.history_seconds:
            self.timeline.popleft()
        if self.timeline:
            points = np.array(self.timeline)
            self.scatter.set_offsets(points)
            self.scatter.set_color(plots.colours([self.labels[int(k)] for k in points[:, 1]]))
        self.ax_time.set_xlim(max(0.0, result.time - self.history_seconds), max(self.history_seconds, result.time))
        self.frames += 1
        if self.save_frames:
            self.fig.savefig(self.save_frames / f"frame_{self.frames:05d}.png")
        if self.interactive:
            self.fig.canvas.draw_idle()
            self.plt.pause(0.001)

    @property
    def closed(self) -> bool:
        return self.interactive and not self.plt.fignum_exists(self.fig.number)

    def close(self) -> None:
        self.plt.close(self.fig)


# ----------------------------------------------------------------------------------------------
# Notebook widget
# ----------------------------------------------------------------------------------------------
class LiveDemo:
    """An ipywidgets panel: source picker, start/stop, a bar per emotion, the current emotion in
    large text, and a timeline. Sources: any microphone ``sounddevice`` lists, plus the files given.

    ``LiveDemo(predictor, source=FileSource(...))`` works without a microphone (notebook 06 under
    nbval). ``demo.start()``/``demo.stop()`` do what the buttons do; ``demo.wait()`` blocks until
    the source ends. The stream runs through :func:`~ser_lib.inference.streaming.run_stream` in a
    worker thread, with the panel as its view.
    """

    def __init__(self, predictor: Predictor | Ensemble, source=None, files: list[str | Path] | None = None,
                 settings: StreamSettings = StreamSettings(), history: int = 40):
        import ipywidgets as w

        self.predictor, self.settings = predictor, settings
        self.history = deque(maxlen=history)
        self.results: list[StreamResult] = []
        self.error: str | None = None
        self.closed = False  # the view protocol of run_stream: the panel never closes itself
        self._thread: threading.Thread | None = None
        self.stream: StreamingPredictor | None = None  # the latest stream started
        self._source = None
        self._fixed_source = source
        options, mic_note = self._source_options(source, files)
        self.device_picker = w.Dropdown(options=options, description="source", layout=w.Layout(width="420px"))
        gates = [("Silero VAD", "silero")] if vad.silero_available() else []
        gates.append(("energy gate", "energy"))
        chosen = gates[0][1] if settings.vad == "auto" else settings.vad
        self.vad_picker = w.Dropdown(options=gates, value=chosen if chosen in dict(gates).values() else "energy",
                                     description="voice", layout=w.Layout(width="220px"))
        self.start_button = w.Button(description="start", button_style="success", icon="microphone")
        self.stop_button = w.Button(description="stop", button_style="danger", icon="stop", disabled=True)
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.current = w.HTML(self._current_html(NO_SPEECH, None))
        self.bars = {label: w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="320px"))
                     for label in predictor.labels}
        for bar, colour in zip(self.bars.values(), plots.colours(predictor.labels)):
            bar.style.bar_color = colour
        rows = [w.HBox([w.Label(label, layout=w.Layout(width="80px")), bar]) for label, bar in self.bars.items()]
        self.timeline = w.HTML(self._timeline_html())
        self.status = w.Label(mic_note)
        self.widget = w.VBox([w.HBox([self.device_picker, self.vad_picker, self.start_button, self.stop_button]),
                              w.HBox([w.VBox(rows), self.current]), self.timeline, self.status])

    @staticmethod
    def _source_options(source, files) -> tuple[list, str]:
        """The picker's entries (the given source, files, microphones) and a note when no microphone works."""
        options = []
        if source is not None:
            options.append((f"file: {Path(getattr(source, 'path', 'source')).name}", ("given", None)))
        options += [(f"file: {Path(f).name}", ("file", str(f))) for f in files or []]
        note = ""
        try:
            options += [(f"mic {d['index']}: {d['name']}", ("mic", d["index"])) for d in input_devices()]
        except DeviceError as err:
            note = f"microphones unavailable: {err}"
        return options or [("no audio source", ("none", None))], note

    # -- display ---------------------------------------------------------------------------------
    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @staticmethod
    def _current_html(label: str, confidence: float | None) -> str:
        colour = plots.EMOTION_COLOURS.get(label, "#777777")
        extra = f"<div style='font-size:14px;color:#555'>{confidence:.0%}</div>" if confidence is not None else ""
        return (f"<div style='padding:0 24px;text-align:center'><div style='font-size:40px;font-weight:bold;"
                f"color:{colour}'>{label}</div>{extra}</div>")

    def _timeline_html(self) -> str:
        cells = []
        for result in self.history:
            colour = plots.EMOTION_COLOURS.get(result.label, "#e0e0e0") if result.speech else "#e0e0e0"
            cells.append(f"<div title='{result.time:.1f}s {result.label}' style='width:12px;height:22px;"
                         f"background:{colour};margin-right:1px'></div>")
        return ("<div style='font-size:12px;color:#555'>timeline (newest right, grey: no speech)</div>"
                f"<div style='display:flex'>{''.join(cells)}</div>")

    def update(self, result: StreamResult) -> None:
        """Show one hop's result (called from the worker thread)."""
        self.results.append(result)
        self.history.append(result)
        values = result.smoothed if result.smoothed is not None else np.zeros(len(self.bars))
        for bar, value in zip(self.bars.values(), values):
            bar.value = float(value)
        confidence = float(values.max()) if result.speech else None
        self.current.value = self._current_html(result.label, confidence)
        self.timeline.value = self._timeline_html()
        self.status.value = f"{result.time:.1f} s   level {result.level_db:.0f} dBFS   latency {result.latency_ms:.0f} ms"

    def close(self) -> None:
        """The stream ended: the start button works again."""
        self.start_button.disabled, self.stop_button.disabled = False, True

    # -- control ---------------------------------------------------------------------------------
    def _make_source(self):
        kind, value = self.device_picker.value
        if kind == "given":
            return self._fixed_source
        if kind == "file":
            return FileSource(value, realtime=True)
        if kind == "mic":
            return MicrophoneSource(value)
        raise DeviceError("no audio source: connect a microphone or pass a FileSource")

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        try:
            self._source = self._make_source()
        except DeviceError as err:
            self.status.value = self.error = str(err)
            return
        settings = replace(self.settings, vad=self.vad_picker.value)
        self.stream = stream = StreamingPredictor(self.predictor, self._source.sample_rate, settings)
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(stream, self._source), daemon=True)
        self._thread.start()

    def _run(self, stream: StreamingPredictor, source) -> None:
        try:
            run_stream(stream, source, self)
        except Exception as err:  # shown in the panel: a worker thread has nobody else to tell
            self.status.value = self.error = f"{type(err).__name__}: {err}"

    def stop(self) -> None:
        if self._source is not None:
            self._source.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the source ends (a file finishes) or ``timeout`` seconds pass."""
        if self._thread is not None:
            self._thread.join(timeout)
