# The dossier service image: one image for the web app, the workers and the CLI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/dossier \
    PATH=/opt/dossier/bin:$PATH \
    DOSSIER_DATA_DIR=/var/lib/dossier

# OCR and PDF tools for text extraction (workers) and PDF/A renditions (archive export);
# tzdata for Europe/Zurich; Pango and the fonts for WeasyPrint's PDF/A letters (DejaVu,
# Noto Sans Arabic and Ethiopic, embedded so that every letter of a name is kept).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-deu \
       tesseract-ocr-eng poppler-utils ghostscript tzdata libpango-1.0-0 libpangoft2-1.0-0 \
       fonts-dejavu-core fonts-noto-core \
    && rm -rf /var/lib/apt/lists/*

# A venv keeps the service's packages apart from the image's own Python. Every
# dependency ships as a binary wheel, so no compiler is needed.
RUN python -m venv /opt/dossier

WORKDIR /src
# Dependencies first, in their own layer, so a code change does not reinstall them: exactly
# the versions (and hashes) of requirements-runtime.lock, the ones the tests ran with.
COPY requirements-runtime.lock /tmp/runtime.lock
RUN pip install --no-deps --require-hashes -r /tmp/runtime.lock && pip check && rm /tmp/runtime.lock
COPY . .
# The locked setuptools builds the project in place of an unpinned build environment.
RUN pip install --no-deps --no-build-isolation . && cd / && rm -rf /src

# Unprivileged user with a home directory (gunicorn's control socket is in the data directory).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/dossier dossier \
    && mkdir -p /var/lib/dossier \
    && chown dossier:dossier /var/lib/dossier
USER dossier
WORKDIR /var/lib/dossier

EXPOSE 8000
# nginx runs in its own container in front of this one (docker-compose.yml, service proxy);
# the image has none, so gunicorn listens itself.
CMD ["dossier", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker", "--no-proxy"]
