"""A small Flask app."""
from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.route("/")
def index():
    return "flask index"


@app.route("/json")
def json_view():
    return jsonify(ok=True, args=request.args.to_dict(),
                   ua=request.headers.get("User-Agent", ""))


@app.route("/user/<name>")
def user(name):
    return "hello %s" % name


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(),
                   files={k: len(v.read()) for k, v in request.files.items()})


@app.route("/echo_json", methods=["POST", "PUT"])
def echo_json():
    return jsonify(method=request.method, data=request.get_json())


@app.route("/stream")
def stream():
    n = int(request.args.get("n", "5"))

    def gen():
        for i in range(n):
            yield "line %d\n" % i
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.route("/status/<int:code>")
def status(code):
    return "status %d" % code, code


@app.route("/boom")
def boom():
    raise RuntimeError("flask-boom-MARKER")
