FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend backend
COPY worker worker
COPY frontend frontend
COPY docs/lessons docs/lessons
# Editable: the app serves frontend/ from beside backend/.
RUN pip install --no-cache-dir -e .
ENV EPOQUE_DATA_DIR=/data
EXPOSE 8000
CMD ["epoque", "serve", "--no-worker", "--host", "0.0.0.0", "--generate-token"]
