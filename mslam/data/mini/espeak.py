"""espeak-ng through its C library (libespeak-ng), one engine per process.

Starting the espeak-ng program costs ~10 ms of one core per utterance (loading its data files),
more than speaking a number does; the library loads them once per process. The engine keeps a
little state from one utterance to the next (e.g. the voice's flutter phase), so the audio of an
utterance depends on what the same process spoke before it: mslam.data.mini_corpus runs a fresh
process per fixed chunk of utterances, which makes every chunk reproducible.

As a worker (what mslam.data.mini_corpus runs):

    python -m mslam.data.mini.espeak < jobs.json > audio.bin

jobs.json: {"library": PATH, "jobs": [[text, voice, pitch, rate], ...]}; audio.bin: the sample
rate (uint32), then per job the number of samples (uint32) and the int16 samples, little-endian.
Only the standard library is imported, so a worker starts in a few tens of milliseconds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import struct
import sys

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    pass


def find_library() -> str | None:
    """The loadable libespeak-ng, or None."""
    for path in (ctypes.util.find_library("espeak-ng"), "libespeak-ng.so.1", "libespeak-ng.dylib"):
        if path:
            try:
                ctypes.CDLL(path)
                return path
            except OSError:
                continue
    return None


class Engine:
    def __init__(self, library: str):
        self.lib = ctypes.CDLL(library)
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({self.sample_rate}); is espeak-ng-data installed?")
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)   # kept referenced: the library calls it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    def speak(self, text: str, voice: str, pitch: int, rate: int) -> bytes:
        """Native-endian int16 samples at self.sample_rate."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice '{voice}'")
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        if err != 0 or self.lib.espeak_Synchronize() != 0:
            raise EspeakError(f"espeak_Synth failed ({err}) on '{text}' with voice {voice}")
        return b"".join(self._chunks)


def encode_chunk(rate: int, outputs: list[bytes]) -> bytes:
    if sys.byteorder != "little":  # pragma: no cover
        raise EspeakError("big-endian hosts are not supported")
    return struct.pack("<I", rate) + b"".join(struct.pack("<I", len(o) // 2) + o for o in outputs)


def decode_chunk(data: bytes, n_jobs: int) -> tuple[int, list[bytes]]:
    (rate,), pos, outputs = struct.unpack_from("<I", data), 4, []
    for _ in range(n_jobs):
        (n,) = struct.unpack_from("<I", data, pos)
        outputs.append(data[pos + 4:pos + 4 + 2 * n])
        pos += 4 + 2 * n
    if pos != len(data) or any(len(o) % 2 for o in outputs):
        raise EspeakError(f"worker output has {len(data)} bytes; expected {pos} for {n_jobs} utterances")
    return rate, outputs


def main() -> int:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    try:
        engine = Engine(request["library"])
        outputs = [engine.speak(text, voice, int(pitch), int(rate)) for text, voice, pitch, rate in request["jobs"]]
    except EspeakError as e:
        print(f"espeak worker: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(encode_chunk(engine.sample_rate, outputs))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
