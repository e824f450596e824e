"""`mlspec serve`'s HTTP app (FastAPI): `POST /predict` and `GET /health`, requests and
answers as pydantic models (which give the OpenAPI schema at /openapi.json and /docs).

Every answer that is not a prediction is JSON `{"error": "..."}`: 400 for a body that is
not JSON, 422 for one that does not fit the run (a wrong width, a wrong type, an unknown
column, an empty body), 404 and 405 for a wrong path or method, and a 500 only for a bug,
with its one-line message and no traceback."""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    ValidationError,
    model_validator,
)

from mlspec.runtime.serving import Predictor, RequestError, columns_of, from_columns, from_rows

MAX_ROWS = 1_000_000
COLUMNS = ("by column name: numbers for a numeric column (null for a missing cell where "
           "the run fills them), text (or whole numbers) for a categorical or text column, "
           "rows of numbers for an input of data without column names (see GET /health's "
           "`columns`)")


class PredictRequest(BaseModel):
    """Rows to predict: `rows` (the numeric features in the data's column order) or
    `columns` (by name: numbers, or raw text and categorical values); `proba` asks for
    each class's probability too."""

    model_config = ConfigDict(extra="forbid")

    rows: Annotated[list[list[StrictFloat]], Field(max_length=MAX_ROWS)] | None = None
    columns: Annotated[dict[str, Annotated[list[Any], Field(max_length=MAX_ROWS)]],
                       Field(description=COLUMNS)] | None = None
    """Checked cell by cell where they become the model's inputs (`from_columns`), with
    messages that name the column and row."""
    proba: StrictBool = False

    @model_validator(mode="after")
    def _one_form(self):
        if (self.rows is None) == (self.columns is None):
            raise ValueError('give either "rows" or "columns"' if self.rows is None
                             else 'give "rows" or "columns", not both')
        return self


class PredictAnswer(BaseModel):
    """`predictions`: one per row (class names where the data had them); for several
    outputs, a list for each by output name. With `proba`: `probabilities` (a list per
    row, in the order of `classes`)."""

    predictions: list[Any] | dict[str, list[Any]]
    probabilities: list[list[float]] | dict[str, list[list[float]]] | None = None
    classes: list[Any] | dict[str, list[Any]] | None = None


class Health(BaseModel):
    status: str
    model: str
    run: str
    columns: list[str]
    """The names a request's `columns` take."""
    row_width: int | None
    """The numbers a row of `rows` holds; None where the model takes named columns only."""


class ErrorAnswer(BaseModel):
    error: str


def _validation_message(errors) -> str:
    """Pydantic's errors as one line: where (`rows[0][1]`) and what."""
    first = errors[0]
    if first.get("type") == "model_type":
        return 'the request should be a JSON object such as {"rows": [[...], ...]}'
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                    for p in first.get("loc", ())).lstrip(".")
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else message + more


def read_request(body: bytes) -> PredictRequest:
    """The request in a body of JSON (whatever its content type says), or a RequestError
    (`.status` 400: not JSON; 422: JSON that is no request)."""
    if not body.strip():
        raise RequestError('the request has no body; send JSON such as {"rows": [[...], ...]}')
    try:
        return PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors()
        if problems[0].get("type") == "json_invalid":
            raise RequestError("the request body is not JSON: " + problems[0].get(
                "ctx", {}).get("error", "invalid JSON"), status=400) from None
        raise RequestError(_validation_message(problems)) from None


def build_app(result, folder: str, predictor: Predictor | None = None):
    """The app answering for a run (its `Predictor` warmed up by the caller)."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    predictor = predictor or Predictor(result)
    info = result.program.data.info
    inputs = info.inputs
    row_width = int(inputs[0].shape[0]) if len(inputs) == 1 and inputs[0].kind == "float" \
        and len(inputs[0].shape) == 1 else None
    health = Health(status="ok", model=result.program.name, run=folder,
                    columns=columns_of(result), row_width=row_width)
    errors = {400: {"model": ErrorAnswer}, 422: {"model": ErrorAnswer}}
    app = FastAPI(title=f"mlspec: {result.program.name}",
                  description=f"Predictions of the run in {folder}.")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):  # a bug: one line, no traceback
        return error(500, f"internal error: {type(exc).__name__}: {str(exc)[:200]}")

    @app.get("/health", response_model=Health)
    def get_health() -> Health:
        return health

    body = {"required": True, "content": {"application/json": {
        "schema": PredictRequest.model_json_schema()}}}

    def answer(body: bytes) -> JSONResponse:
        try:
            request = read_request(body)
            x = from_rows(result, request.rows) if request.rows is not None \
                else from_columns(result, request.columns)
            return JSONResponse(predictor.answer(x, request.proba))
        except RequestError as exc:
            return error(exc.status, str(exc))

    @app.post("/predict", response_model=PredictAnswer, responses=errors,
              openapi_extra={"requestBody": body})
    async def predict(request: Request):
        # read as JSON whatever the content type, validated by PredictRequest in one pass
        # of pydantic's parser; the model runs outside the event loop
        return await run_in_threadpool(answer, await request.body())

    return app
