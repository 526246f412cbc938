"""Audio and video IO: WAV/PCM and friends, resampling, MP4 and fragmented MP4 (PyAV)."""

from models.media.audio import encode_audio, pcm16_bytes, read_audio, resample, rms_envelope, wav_bytes, write_wav
from models.media.video import FragmentedMp4Writer, Mp4Writer, decode_audio, decode_frames, probe, write_mp4

__all__ = [
    "FragmentedMp4Writer",
    "Mp4Writer",
    "decode_audio",
    "decode_frames",
    "encode_audio",
    "pcm16_bytes",
    "probe",
    "read_audio",
    "resample",
    "rms_envelope",
    "wav_bytes",
    "write_mp4",
    "write_wav",
]
